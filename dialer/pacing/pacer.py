"""The pacing seam: `lines_to_dial(snapshot) -> int`, and the plainest pacer behind it.

A pacer answers one question, asked every second (and on events): how many new calls
should the campaign place right now? It reads only the snapshot. A pacer may keep state
between calls (VICIdial's dial level moves every 15 s), but only as a function of the
snapshots it was shown, never of a clock or of I/O, so a recorded sequence of snapshots
replays to the same answers.
"""
from __future__ import annotations

from typing import Protocol

from dialer.pacing.snapshot import Snapshot


class Pacer(Protocol):
    """Decides how many lines to dial now; never negative."""

    name: str

    def lines_to_dial(self, snapshot: Snapshot) -> int: ...


def uncovered_ready(snapshot: Snapshot) -> int:
    """Ready collectors that no call in flight is already headed for.

    Every ringing call and every answered call still waiting may take a ready collector,
    so each covers one. Reserved collectors' calls are not in `ringing` (they have their
    collector), and paused collectors are not ready, so neither changes this count."""
    return max(0, len(snapshot.ready) - len(snapshot.ringing) - len(snapshot.waiting))


class Progressive:
    """One line per ready collector not already covered by a call in flight.

    Never abandons a call while collectors stay ready (each answered call has its
    collector), and so leaves collectors idle for the whole ring time of every call:
    the floor every other pacer is measured against."""

    name = "progressive"

    def lines_to_dial(self, snapshot: Snapshot) -> int:
        return uncovered_ready(snapshot)
