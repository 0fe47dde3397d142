"""dunline: cases."""
