"""dunline: asterisk_conf."""
