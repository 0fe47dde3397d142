"""Pacing: how many lines to dial now, from a snapshot of the floor (pure, no I/O)."""
