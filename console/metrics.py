"""`GET /metrics`: Prometheus text for the gate, every watchdog check, calls and recordings.

Gauges are read at scrape time: the service's health snapshot (gate, checks, canary, AMI,
ingest backlog) plus the counts the database keeps as calls end and recordings are
archived (storage/counters.py: calls by outcome, recordings, recordings by flag; the calls
still open by the state index), so a scrape costs the same at any size of the archive. A
fresh registry per scrape keeps the numbers exactly what the snapshot says.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from console.deps import DEPS
from storage import counters

STATE_VALUE = {"ok": 0, "warn": 1, "critical": 2}


class Snapshot(Collector):
    def __init__(self, health: dict[str, Any], outcomes: dict[str, int], recordings: int,
                 flagged: dict[str, int]) -> None:
        self.health, self.outcomes, self.recordings, self.flagged = health, outcomes, recordings, flagged

    def collect(self) -> Iterator[Metric]:
        h = self.health
        yield GaugeMetricFamily("dunline_ready", "1 when the service is ready to dial", value=int(bool(h.get("ready"))))
        yield GaugeMetricFamily("dunline_ami_connected", "1 when the AMI link is up",
                                value=int(h.get("ami") == "connected"))
        yield GaugeMetricFamily("dunline_ingest_backlog", "recordings waiting for ingest",
                                value=h.get("ingest_backlog", 0))
        watchdog = h.get("watchdog")
        if watchdog:
            yield GaugeMetricFamily("dunline_gate_open", "1 when the dialing gate is open",
                                    value=int(bool(watchdog["gate_open"])))
            yield GaugeMetricFamily("dunline_dials_held_back",
                                    "1 while new dials are held back (a busy ingest backlog; the gate stays open)",
                                    value=int(bool(watchdog.get("dials_held_back"))))
            state = GaugeMetricFamily("dunline_check_state", "watchdog check: 0 ok, 1 warn, 2 critical",
                                      labels=["check"])
            value = GaugeMetricFamily("dunline_check_value", "the figure a watchdog check measured",
                                      labels=["check"])
            for name, check in watchdog["checks"].items():
                state.add_metric([name], STATE_VALUE.get(check["state"], 2))
                if check.get("value") is not None:
                    value.add_metric([name], float(check["value"]))
            yield state
            yield value
            canary = watchdog.get("canary")
            if canary:
                yield GaugeMetricFamily("dunline_canary_passed", "1 when the last canary passed",
                                        value=int(bool(canary["passed"])))
                yield GaugeMetricFamily("dunline_canary_seconds", "end-to-end time of the last canary",
                                        value=canary["seconds"])
                yield CounterMetricFamily("dunline_canary_runs", "canary calls placed", value=canary["runs"])
        calls = CounterMetricFamily("dunline_calls", "call attempts by outcome", labels=["outcome"])
        for outcome, count in sorted(self.outcomes.items()):
            calls.add_metric([outcome], count)
        yield calls
        yield CounterMetricFamily("dunline_recordings", "recordings archived", value=self.recordings)
        flags = CounterMetricFamily("dunline_recordings_flagged", "recordings by flag", labels=["flag"])
        for flag, count in sorted(self.flagged.items()):
            flags.add_metric([flag], count)
        yield flags


async def metrics(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    async with deps.db.session() as s:
        counts = await counters.read(s)
        open_calls = await counters.open_calls(s)
    outcomes = {label: n for (name, label), n in counts.items() if name == counters.CALLS and n}
    if open_calls:
        outcomes["open"] = open_calls
    flagged = {label: n for (name, label), n in counts.items() if name == counters.FLAGGED and n}
    registry = CollectorRegistry()
    registry.register(Snapshot(deps.health(), outcomes, counts.get((counters.RECORDINGS, ""), 0), flagged))
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
