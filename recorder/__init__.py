"""dunline: recorder."""
