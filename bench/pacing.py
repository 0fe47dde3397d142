"""Pacing: talk occupancy and abandon rate of an 8-hour shift, for 20 and 100 collectors at
15 % and 30 % answer rates, under progressive dialling (the baseline), VICIdial's adaptive
dial level (ADAPT_HARD_LIMIT, as read from its code) and our predictive pacer, all in the
same run of the same simulator (`dialer.simulation`, simulated seconds).

Each row is the mean over `SEEDS` seeds (the same seeds for every pacer); "worst" is the
highest abandon rate of any seed. The abandon rate is over the whole run, which stands for
the rolling 30-day window (the pacer's snapshot carries the run's counts as they stand).
Targets (issue 12): abandon <= 3 % in every row of ours; occupancy >= 80 % at 20 collectors /
30 % and >= 86 % at 100 / 30 %. The runs go to a process pool (one per core).

BENCH_PACING_SEEDS (default 3) and BENCH_PACING_HOURS (default 8) shorten a trial run.
"""
from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from dialer.pacing import PACERS
from dialer.simulation import Floor, Result, simulate

FLOORS = ((20, 0.15), (20, 0.30), (100, 0.15), (100, 0.30))
TARGET_ABANDON = 0.03
TARGET_OCCUPANCY = {(20, 0.30): 0.80, (100, 0.30): 0.86}


@dataclass(frozen=True, slots=True)
class Row:
    collectors: int
    answer_rate: float
    pacer: str
    occupancy: float
    abandon: float
    worst_abandon: float
    placed: float


def _run(job: tuple[int, float, float, str, int]) -> Result:
    collectors, answer_rate, hours, pacer, seed = job
    return simulate(Floor(collectors, answer_rate, hours=hours), PACERS[pacer](), seed=seed)


def measure(seeds: int, hours: float) -> list[Row]:
    jobs = [(c, a, hours, pacer, seed) for c, a in FLOORS for pacer in PACERS for seed in range(1, seeds + 1)]
    jobs.sort(key=lambda j: (j[3] != "predictive", -j[0], j[1]))  # the long runs first
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = dict(zip(jobs, pool.map(_run, jobs)))
    rows = []
    for c, a in FLOORS:
        for pacer in PACERS:
            runs = [results[(c, a, hours, pacer, seed)] for seed in range(1, seeds + 1)]
            rows.append(Row(c, a, pacer, statistics.mean(r.occupancy for r in runs),
                            statistics.mean(r.abandon_rate for r in runs), max(r.abandon_rate for r in runs),
                            statistics.mean(r.placed for r in runs)))
    return rows


def _verdict(row: Row) -> str:
    if row.pacer != "predictive":
        return ""
    missed = []
    if row.worst_abandon > TARGET_ABANDON:
        missed.append(f"abandon > {TARGET_ABANDON:.0%}")
    goal = TARGET_OCCUPANCY.get((row.collectors, row.answer_rate))
    if goal is not None and row.occupancy < goal:
        missed.append(f"occupancy < {goal:.0%}")
    return "MISSED: " + ", ".join(missed) if missed else "met"


def main() -> None:
    seeds = int(os.environ.get("BENCH_PACING_SEEDS", "3"))
    hours = float(os.environ.get("BENCH_PACING_HOURS", "8"))
    started = time.perf_counter()
    rows = measure(seeds, hours)
    baseline = {(r.collectors, r.answer_rate): r.occupancy for r in rows if r.pacer == "progressive"}
    print(f"\nPacing: {hours:g} h simulated shift, mean of {seeds} seeds "
          f"({time.perf_counter() - started:.0f} s wall); targets: abandon <= 3 %, "
          "occupancy >= 80 % at 20/30 %, >= 86 % at 100/30 %")
    print(f"{'collectors':>10} {'answer':>7} {'pacer':<12} {'occupancy':>10} {'vs progressive':>15} "
          f"{'abandon':>8} {'worst':>7} {'dials/h':>8}  target")
    for r in rows:
        print(f"{r.collectors:>10} {r.answer_rate:>7.0%} {r.pacer:<12} {r.occupancy:>10.1%} "
              f"{r.occupancy / baseline[(r.collectors, r.answer_rate)]:>14.2f}x {r.abandon:>8.2%} "
              f"{r.worst_abandon:>7.2%} {r.placed / hours:>8.0f}  {_verdict(r)}")


if __name__ == "__main__":
    main()
