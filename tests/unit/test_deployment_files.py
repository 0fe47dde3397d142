"""The production shape (docker-compose.yml) is well-formed and uses the sandbox's configs."""
from pathlib import Path



ROOT = Path(__file__).resolve().parents[2]
import yaml


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
