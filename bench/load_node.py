"""One dunline node for `make bench-load`, in its own process (so /proc tells its CPU apart).

    python -m bench.load_node '<settings overrides as JSON>' <start time, ISO 8601>

Runs the service on the sandbox with the given overrides and a clock that starts at the
given time (the debtors' calling hours, whatever the hour of the machine) until SIGTERM.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import datetime

from dunline.cli import serve_until_signal
from dunline.settings import load_settings
from storage.clock import OffsetClock


def main(argv: list[str]) -> int:
    overrides, start = json.loads(argv[0]), datetime.fromisoformat(argv[1])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s node %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve_until_signal(load_settings(env={}, overrides=overrides), clock=OffsetClock(start)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
