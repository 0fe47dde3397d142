"""Run every benchmark and print its table."""
from bench import ingest_speed, lookup_by_case


def main() -> None:
    ingest_speed.main()
    lookup_by_case.main()


if __name__ == "__main__":
    main()
