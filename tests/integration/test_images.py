"""The production images, built as far as this machine can without a container engine.

`docker/dunline.Dockerfile`'s file steps are applied to the repository (tests/dockerfile_sim.py:
COPY with Docker's semantics, minus .dockerignore; its pip steps run for real), the wheel it
builds is installed into a clean virtualenv the way its runtime stage installs it, and the
installed `dunline --help` and `dunline db upgrade` (SQLite) must work from there, in a
directory far from the source tree. The wheel must hold every package and template the
sandbox uses. The Dockerfile this replaced (COPY of several directories, which flattens
their contents into /app) fails the same steps. Both images declare a health check and the
files-at-rest rules (a dunline group shared by the spool, umask 027).
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.dockerfile_sim import Build, parse

ROOT = Path(__file__).resolve().parents[2]
from tests.packages import PACKAGES
BROKEN = """\
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ami agi_scripts dialer recorder storage asterisk_conf cases console dunline ./
RUN pip install --no-cache-dir '.[postgres]'
CMD ["dunline", "serve"]
"""


def clean_venv(where: Path) -> Path:
    """A new virtualenv that sees the test environment's third-party packages (so nothing is
    downloaded) but not dunline: dunline must come from what the image installs."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, capture_output=True, timeout=120)
    site = next((where / "lib").glob("python3*/site-packages"))
    (site / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return where


def run_dunline(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUNLINE_", "PYTHON"))}
    env["DUNLINE_DATABASE_URL"] = f"sqlite+aiosqlite:///{cwd / 'image.db'}"
    return subprocess.run([str(venv / "bin" / "dunline"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def build(dockerfile_text: str, scratch: Path) -> tuple[Build, Path]:
    stages = parse(dockerfile_text)
    venv = clean_venv(scratch / "venv")
    b = Build(ROOT, scratch / "image", stages, env={"PIP_NO_BUILD_ISOLATION": "0", "PIP_NO_CACHE_DIR": "1"})
    for index in range(len(stages)):  # the last stage installs into the clean venv; a builder uses ours
        last = index == len(stages) - 1
        b.pips[index] = [str(venv / "bin" / "python") if last else sys.executable, "-m", "pip"]
    b.run()
    return b, venv


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("image")
    b, venv = build((ROOT / "docker" / "dunline.Dockerfile").read_text(), scratch)
    return b, venv, scratch


def test_the_image_runs_dunline_from_the_wheel_it_installed(image):
    b, venv, scratch = image
    elsewhere = scratch / "run"
    elsewhere.mkdir()
    helped = run_dunline(venv, elsewhere, "--help")
    assert helped.returncode == 0 and "serve" in helped.stdout, helped.stderr
    upgraded = run_dunline(venv, elsewhere, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (elsewhere / "image.db").stat().st_size > 0
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import storage, recorder.standalone.verify_bag as v; "
                            "print(storage.__file__, v.__file__)"], cwd=elsewhere, capture_output=True, text=True)
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout, "dunline came from the image's wheel"


def test_the_wheel_holds_every_package_and_template_the_sandbox_uses(image):
    b, _, _ = image
    [wheel] = list((b.roots["build"] / "wheels").glob("dunline-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "ls-files", *PACKAGES], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    needed = {p for p in tracked if p.endswith((".py", ".conf", ".ini", ".mako")) or "/templates/" in p}
    assert needed and sorted(needed - names) == []
    assert any(n.startswith("asterisk_conf/templates/pbx/extensions.conf") for n in names)
    assert "recorder/standalone/verify_bag.py" in names and "storage/migrations/env.py" in names
    assert not any(n.startswith(("tests/", ".venv/", "var/")) for n in names)


def test_the_build_context_leaves_out_environments_and_state(image):
    b, _, _ = image
    src = b.roots["build"] / "src"
    assert (src / "pyproject.toml").is_file() and (src / "storage" / "models.py").is_file()
    assert not (src / ".venv").exists() and not (src / ".git").exists() and not list(src.rglob("__pycache__"))


def test_the_dockerfile_this_replaced_fails_the_same_steps(tmp_path):
    """The flattening COPY: the packages' files land in /app, pip finds no package to install
    (or installs one that cannot import): caught here, as no engine could."""
    try:
        _, venv = build(BROKEN, tmp_path)
    except RuntimeError:
        return  # the install step itself failed
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    assert run_dunline(venv, elsewhere, "--help").returncode != 0


def test_both_images_keep_files_at_rest_and_say_whether_they_are_healthy():
    dunline_stage = parse((ROOT / "docker" / "dunline.Dockerfile").read_text())[-1]
    pbx_stage = parse((ROOT / "docker" / "pbx.Dockerfile").read_text())[-1]
    for stage in (dunline_stage, pbx_stage):
        assert stage.ops("HEALTHCHECK"), stage.base
        assert stage.ops("USER") and stage.ops("USER")[-1].args not in ("root", "0")
    dunline_run = " ".join(i.args for i in dunline_stage.ops("RUN"))
    pbx_run = " ".join(i.args for i in pbx_stage.ops("RUN"))
    assert "groupadd --gid 990 dunline" in dunline_run and "groupadd --gid 990 dunline" in pbx_run, \
        "one group, one gid: the spool is shared through it"
    assert "chmod 2770 /var/spool/asterisk/monitor/dunline" in pbx_run
    assert "umask 027" in pbx_stage.ops("CMD")[-1].args, "the PBX writes recordings and logs 0640"
