"""`dunline recordings ...` commands: retrieval (filled in by the retrieval work)."""
from __future__ import annotations

import argparse


def add_parsers(actions: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register this module's `recordings` subcommands."""
