"""Run every benchmark and print its table."""
from bench import ingest_speed


def main() -> None:
    ingest_speed.main()


if __name__ == "__main__":
    main()
