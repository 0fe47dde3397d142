"""One dunline node for `make bench-load`, in its own process (so /proc tells its CPU apart).

    python -m bench.load_node '<settings overrides as JSON>' <start time, ISO 8601>

Runs the service on the sandbox with the given overrides and a clock that starts at the
given time (the debtors' calling hours, whatever the hour of the machine) until SIGTERM.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path

from dunline.cli import serve_until_signal
from dunline.settings import load_settings
from storage.clock import OffsetClock


def _profile_sql(out: Path) -> None:
    """BENCH_SQL_PROFILE=<file>: every statement's count and total time, written at exit."""
    import atexit
    import time
    from collections import defaultdict

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    @event.listens_for(Engine, "before_cursor_execute")
    def before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        conn.info.setdefault("t0", []).append(time.perf_counter())

    @event.listens_for(Engine, "after_cursor_execute")
    def after(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        spent = time.perf_counter() - conn.info["t0"].pop()
        entry = totals[" ".join(statement.split())[:300]]
        entry[0] += 1
        entry[1] += spent

    def dump() -> None:
        rows = sorted(totals.items(), key=lambda kv: -kv[1][1])
        out.write_text("\n".join(f"{t:9.3f} s {n:7d}x  {sql}" for sql, (n, t) in rows))

    atexit.register(dump)


def _profile_ami(out: Path) -> None:
    """BENCH_AMI_PROFILE=<file>: AMI events received by name, how late each arrived after the
    PBX stamped it, and each bind's start and end (wall time), written at exit."""
    import atexit
    import time
    from collections import Counter

    from agi_scripts.routes import CallRoutes
    from ami.link import AmiLink

    names: Counter[str] = Counter()
    lags: list[float] = []
    binds: dict[str, list[float]] = {}
    on_event, bind = AmiLink._on_event, CallRoutes.bind

    def counting(self, protocol, headers):  # noqa: ANN001, ANN202
        names[headers.get("Event", "?")] += 1
        stamp = headers.get("Timestamp")
        if stamp:
            lags.append(time.time() - float(stamp))
        return on_event(self, protocol, headers)

    async def timed(self, session):  # noqa: ANN001, ANN202
        started = time.time()
        try:
            return await bind(self, session)
        finally:
            binds[session.query.get("attempt", "?")] = [started, time.time()]

    AmiLink._on_event, CallRoutes.bind = counting, timed

    def dump() -> None:
        ordered = sorted(lags)
        pick = (lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else (lambda q: 0.0)
        out.write_text(json.dumps({
            "events": dict(names.most_common()), "total": sum(names.values()),
            "lag_p50": pick(0.5), "lag_p95": pick(0.95), "lag_max": ordered[-1] if ordered else 0.0,
            "binds": binds}, indent=1))

    atexit.register(dump)


def main(argv: list[str]) -> int:
    overrides, start = json.loads(argv[0]), datetime.fromisoformat(argv[1])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s node %(levelname)s %(name)s: %(message)s")
    if os.environ.get("BENCH_SQL_PROFILE"):
        _profile_sql(Path(os.environ["BENCH_SQL_PROFILE"]))
    if os.environ.get("BENCH_AMI_PROFILE"):
        _profile_ami(Path(os.environ["BENCH_AMI_PROFILE"]))
    asyncio.run(serve_until_signal(load_settings(env={}, overrides=overrides), clock=OffsetClock(start)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
