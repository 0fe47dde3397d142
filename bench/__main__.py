"""Run every benchmark and print its table."""
from bench import case_list, ingest_speed, intake_speed, lookup_by_case, pacing, watchdog_idle


def main() -> None:
    ingest_speed.main()
    lookup_by_case.main()
    intake_speed.main()
    case_list.main()
    watchdog_idle.main()
    pacing.main()


if __name__ == "__main__":
    main()
