"""`dunline simulate`: one simulated shift of a campaign floor, paced by any pacer.

    dunline simulate [--collectors 20] [--answer-rate 0.3] [--hours 8] [--talk-mean 150]
                     [--pacer predictive|progressive|vicidial|all] [--seed 1]

Needs no settings, database or PBX: it runs `dialer.simulation` (simulated seconds; an
8-hour shift of 100 collectors takes seconds to a few tens of seconds) and prints a table of
talk occupancy (share of logged-in time talking) and abandon rate (abandoned / answered:
the simulator's whole run stands for the 30-day window). Talk times are log-normal with
the given mean and an equal standard deviation; ring, wrap-up and unanswered dials follow
../shared/notes/rules-and-pacing.md (see docs/benchmarks.md). Exit 0, or 2 on bad input.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_simulate(args: argparse.Namespace) -> int:
    from dialer.pacing import PACERS, LogNormal
    from dialer.simulation import Floor, simulate

    try:
        floor = Floor(collectors=args.collectors, answer_rate=args.answer_rate, hours=args.hours,
                      talk=LogNormal(args.talk_mean, args.talk_mean))
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    names = list(PACERS) if args.pacer == "all" else [args.pacer]
    print(f"{floor.collectors} collectors, answer rate {floor.answer_rate:.0%}, {floor.hours:g} h, "
          f"talk mean {args.talk_mean:g} s, seed {args.seed}")
    print(f"{'pacer':<12} {'placed':>8} {'answered':>9} {'abandoned':>10} {'abandon rate':>13} {'occupancy':>10}")
    for name in names:
        result = simulate(floor, PACERS[name](), seed=args.seed)
        print(f"{name:<12} {result.placed:>8} {result.answered:>9} {result.abandoned:>10} "
              f"{result.abandon_rate:>12.2%} {result.occupancy:>9.1%}")
    return 0


def add_simulate_parser(sub: Any) -> None:
    from dialer.pacing import PACERS

    sim = sub.add_parser("simulate", help="simulate a shift of a campaign floor under a pacer (no PBX needed)")
    sim.add_argument("--collectors", type=int, default=20)
    sim.add_argument("--answer-rate", type=float, default=0.3, help="share of dials answered (0-1]")
    sim.add_argument("--hours", type=float, default=8.0, help="simulated shift length")
    sim.add_argument("--talk-mean", type=float, default=150.0, help="mean talk time, seconds")
    sim.add_argument("--pacer", choices=(*PACERS, "all"), default="predictive")
    sim.add_argument("--seed", type=int, default=1)
    sim.set_defaults(func=cmd_simulate)
