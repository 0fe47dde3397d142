"""dunline: dialer."""
