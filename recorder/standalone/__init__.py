"""Files copied verbatim into exports; they import nothing of dunline."""
