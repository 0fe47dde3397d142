"""The front door on the real sandbox: `dunline dial` against a running service, and
`dunline demo --exit` from an empty directory (what `make demo` runs)."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from asterisk_conf import sandbox
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e
DUNLINE = [sys.executable, "-m", "dunline.cli"]


async def run(*argv: str, env: dict[str, str], cwd: Path, timeout: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*DUNLINE, *argv, env=env, cwd=cwd,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(errors="replace")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNLINE_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env.update(extra)
    return env


async def test_dial_command_places_a_call_through_the_service(harness, tmp_path):
    await harness.add_case("E2E-CLI", "15555200007")
    env = child_env(DUNLINE_CONSOLE_PORT=str(harness.service.settings.console.port))
    code, out = await run("dial", "E2E-CLI", env=env, cwd=tmp_path, timeout=30)
    assert code == 2 and "DUNLINE_API_TOKEN" in out, "no token, no call"
    accounts = harness.service.accounts
    await accounts.add_user(username="e2e.lead", display_name="e2e lead", role="supervisor",
                            password="a long e2e password", by="test")
    env["DUNLINE_API_TOKEN"] = await accounts.issue_token("e2e.lead", "cli e2e", by="test")
    code, out = await run("dial", "E2E-CLI", "--wait", "60", env=env, cwd=tmp_path, timeout=90)
    assert code == 0, out
    assert '"outcome": "answered"' in out and '"hangup_cause": 16' in out
    code, out = await run("dial", "NO-SUCH-CASE", env=env, cwd=tmp_path, timeout=30)
    assert code == 1 and "no case" in out
    code, out = await run("dial", "../../etc", env=env, cwd=tmp_path, timeout=30)
    assert code == 1 and "invalid case number" in out


async def test_demo_runs_from_an_empty_directory_and_summarises(sandbox_info, tmp_path):
    state = tmp_path / "sandbox"
    env = child_env(DUNLINE_CONSOLE_PORT=str(free_port()), DUNLINE_PBX_RING_TIMEOUT_S="8")
    try:
        code, out = await run("demo", "--exit", "--state-dir", str(state), env=env, cwd=tmp_path,
                              timeout=240)
    finally:
        sandbox.down(state, purge=True)
    assert code == 0, out
    assert "all outcomes as expected" in out, out
    assert "sign in at http://" in out and "compliance" in out, "the demo says how to sign in"
    assert "verify: OK" in out and "ledger key fingerprint" in out, "the demo proves its archive like an auditor"
    for outcome in ("answered", "busy", "no_answer", "congestion", "invalid"):
        assert outcome in out
    assert "blocked by rule min_gap" in out, "dialling again at once is refused by the policy"
    assert list((tmp_path / "var" / "demo" / "archive").rglob("*.wav")), "the answered call was archived"
