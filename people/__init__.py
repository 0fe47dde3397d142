"""People: accounts, roles, sign-in sessions, API tokens and the login throttle."""
