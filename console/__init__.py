"""dunline: console."""
