"""Render the sandbox's configuration templates: pure functions, no I/O except reading templates.

Templates use ``@@name@@`` placeholders so that Asterisk's own ``${VAR}`` / ``$[expr]``
syntax (dialplans, baresip) passes through untouched. A placeholder without a value is an
error that names it; values that no template uses are ignored (one value set feeds all
the files of an instance).

Template sets live in ``templates/<kind>/`` (``pbx``, ``carrier``, ``baresip``). Files whose
name starts with ``_`` are fragments (e.g. one phone's pjsip sections), rendered by the
caller and passed in as a value; they are not written out as files.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

PLACEHOLDER = re.compile(r"@@([A-Za-z_][A-Za-z0-9_]*)@@")
KINDS = ("pbx", "carrier", "baresip")


class RenderError(ValueError):
    """A template could not be rendered (missing value, malformed placeholder)."""


def placeholders(text: str) -> set[str]:
    """The placeholder names a template uses."""
    return set(PLACEHOLDER.findall(text))


def render(text: str, values: Mapping[str, object], *, name: str = "<template>") -> str:
    """Fill every ``@@name@@`` of `text` from `values`; raise RenderError naming what is missing."""
    missing = sorted(placeholders(text) - set(values))
    if missing:
        listed = ", ".join(f"@@{m}@@" for m in missing)
        raise RenderError(f"{name}: no value for placeholder(s) {listed}")
    out = PLACEHOLDER.sub(lambda m: _as_text(values[m.group(1)], m.group(1), name), text)
    stray = _stray_delimiter(text)
    if stray is not None:
        raise RenderError(f"{name}: malformed placeholder near line {stray}")
    return out


def _as_text(value: object, key: str, name: str) -> str:
    if value is None:
        raise RenderError(f"{name}: placeholder @@{key}@@ is None")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _stray_delimiter(text: str) -> int | None:
    """Line number of an ``@@`` that is not part of a well-formed placeholder, if any."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if "@@" in PLACEHOLDER.sub("", line):
            return lineno
    return None


def template_text(kind: str, filename: str) -> str:
    return resources.files(__package__).joinpath("templates", kind, filename).read_text("utf-8")


def template_files(kind: str) -> list[str]:
    """The file templates (not fragments) of one set, sorted."""
    if kind not in KINDS:
        raise RenderError(f"unknown template set {kind!r} (known: {', '.join(KINDS)})")
    folder = resources.files(__package__).joinpath("templates", kind)
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("_"))


def render_set(kind: str, values: Mapping[str, object]) -> dict[str, str]:
    """Every file of template set `kind`, rendered: {filename: text}."""
    return {f: render(template_text(kind, f), values, name=f"{kind}/{f}") for f in template_files(kind)}


# --- value sets --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PhoneAccount:
    endpoint: str
    password: str


def phone_sections(phones: tuple[PhoneAccount, ...], *, context: str = "dunline-collectors") -> str:
    """The pjsip.conf sections (endpoint, auth, aor) of every phone, from ``_phone.conf``."""
    fragment = template_text("pbx", "_phone.conf")
    return "\n".join(render(fragment, {"endpoint": p.endpoint, "password": p.password, "context": context},
                            name=f"pbx/_phone.conf[{p.endpoint}]") for p in phones)


def pbx_values(*, ami_port: int, ami_secret: str, pbx_sip_port: int, carrier_sip_port: int,
               agi_port: int, phones: tuple[PhoneAccount, ...], rtp_start: int, rtp_end: int,
               ami_username: str = "dunline", sip_bind: str = "127.0.0.1",
               carrier_host: str = "127.0.0.1", agi_host: str = "127.0.0.1",
               etc_dir: str = "/etc/asterisk-dunline",
               recording_dir: str = "/var/spool/asterisk/monitor/dunline") -> dict[str, object]:
    return {
        "etc_dir": etc_dir, "lib_dir": "/var/lib/asterisk", "db_dir": "/var/lib/asterisk",
        "spool_dir": "/var/spool/asterisk", "log_dir": "/var/log/asterisk", "run_dir": "/run/asterisk",
        "cache_dir": "/var/cache/asterisk",
        "ami_port": ami_port, "ami_username": ami_username, "ami_secret": _conf_safe(ami_secret, "ami_secret"),
        "sip_bind": sip_bind, "pbx_sip_port": pbx_sip_port,
        "carrier_host": carrier_host, "carrier_sip_port": carrier_sip_port,
        "agi_host": agi_host, "agi_port": agi_port,
        "rtp_start": rtp_start, "rtp_end": rtp_end,
        "recording_dir": recording_dir,
        "phone_sections": phone_sections(phones),
    }


def carrier_values(*, carrier_sip_port: int, pbx_sip_port: int, rtp_start: int, rtp_end: int,
                   sip_bind: str = "127.0.0.1", pbx_host: str = "127.0.0.1",
                   etc_dir: str = "/etc/asterisk-carrier") -> dict[str, object]:
    return {
        "etc_dir": etc_dir, "lib_dir": "/var/lib/asterisk", "db_dir": "/var/lib/asterisk-carrier",
        "spool_dir": "/var/spool/asterisk-carrier", "log_dir": "/var/log/asterisk-carrier",
        "run_dir": "/run/asterisk-carrier", "cache_dir": "/var/cache/asterisk-carrier",
        "sip_bind": sip_bind, "carrier_sip_port": carrier_sip_port,
        "pbx_host": pbx_host, "pbx_sip_port": pbx_sip_port,
        "rtp_start": rtp_start, "rtp_end": rtp_end,
    }


def phone_values(*, endpoint: str, password: str, sip_port: int, ctrl_port: int, pbx_sip_port: int,
                 rtp_start: int, rtp_end: int, speech_wav: str, dump_dir: str,
                 pbx_host: str = "127.0.0.1") -> dict[str, object]:
    return {
        "endpoint": endpoint, "password": _conf_safe(password, "password"),
        "sip_port": sip_port, "ctrl_port": ctrl_port,
        "pbx_host": pbx_host, "pbx_sip_port": pbx_sip_port,
        "rtp_start": rtp_start, "rtp_end": rtp_end,
        "speech_wav": speech_wav, "dump_dir": dump_dir,
    }


def _conf_safe(value: str, what: str) -> str:
    """Secrets go into ini-style files: refuse characters that would end or comment the line."""
    if not value or any(c in value for c in ";\n\r\"<> ,"):
        raise RenderError(f"{what} is empty or contains a character unsafe in a config line")
    return value
