"""The production shape (docker-compose.yml) is well-formed and uses the sandbox's configs;
docs/deploy.md names only dunline commands that exist, with options they take."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_compose_file_follows_the_compose_specification():
    """Against the Compose Specification's JSON schema (the copy check-jsonschema ships)."""
    checked = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                              str(ROOT / "docker-compose.yml")], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_check_would_catch_a_broken_compose_file(tmp_path):
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  dunline:\n    build: {context: .}\n    depends_on: 7\n")
    checked = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                              str(broken)], capture_output=True, text=True, timeout=60)
    assert checked.returncode != 0


def _deploy_commands(subcommands: set[str]) -> list[list[str]]:
    """Every dunline command line in docs/deploy.md's shell blocks: `dunline` (or
    .../bin/dunline) followed by a global option or one of its subcommands."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, re.S)
    found = []
    for line in "\n".join(blocks).splitlines():
        line = line.split(" #", 1)[0].strip()
        for part in re.split(r"\s*(?:&&|\||>)\s*", line):
            words = shlex.split(part) if part else []
            for i, word in enumerate(words[:-1]):
                if (word == "dunline" or word.endswith("/bin/dunline")) and \
                        words[i + 1] in subcommands | {"--config", "-v", "--verbose"}:
                    found.append(words[i + 1:])
                    break
    return found


def test_deploy_md_uses_only_commands_dunline_has():
    import argparse

    from dunline.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = _deploy_commands(set(subparsers.choices))
    assert len(commands) >= 8, commands
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"docs/deploy.md: `dunline {' '.join(argv)}` is not a dunline command ({exc})")


def test_compose_services_and_build_files():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "pbx", "pbx-config", "dunline"} <= set(services)
    for name, service in services.items():
        if "build" in service:
            assert (ROOT / service["build"]["dockerfile"]).is_file(), name
    # the PBX is configured by rendering the same templates as the sandbox
    assert services["pbx-config"]["command"][:2] == ["dunline", "pbx-render"]
    assert "asterisk-dunline" in " ".join(services["pbx"]["volumes"])
    assert "postgresql+asyncpg" in services["dunline"]["environment"]["DUNLINE_DATABASE_URL"]


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
