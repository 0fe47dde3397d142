"""dunline: dunline."""
