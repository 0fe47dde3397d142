"""How the sandbox PBX's facts become settings (ports, secret, recording paths, phones)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from asterisk_conf import sandbox
from dunline.settings import Settings, load_settings


def sandbox_overrides(info: "sandbox.SandboxInfo") -> dict[str, dict[str, Any]]:
    return {
        "ami": {"host": info.ami_host, "port": info.ami_port, "username": info.ami_username,
                "secret": info.ami_secret},
        "agi": {"port": info.agi_port},
        "recording": {"dir_pbx": info.recording_dir_pbx, "dir_host": str(info.recording_dir_host)},
        "pbx": {"collectors": [p.endpoint for p in info.phones]},
    }


def settings_with_sandbox(config: str | None, state_dir: Path | None = None,
                          extra: dict[str, dict[str, Any]] | None = None) -> Settings:
    """Settings from file/env; if a sandbox is up in `state_dir`, its facts fill the PBX parts."""
    base = load_settings(config)
    state = Path(state_dir or base.sandbox_dir)
    overrides: dict[str, dict[str, Any]] = {}
    if (state / "sandbox.json").exists():
        overrides.update(sandbox_overrides(sandbox.load(state)))
    for section, values in (extra or {}).items():
        overrides.setdefault(section, {}).update(values)
    return load_settings(config, overrides=overrides)
