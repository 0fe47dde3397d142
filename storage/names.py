"""Names shared by the PBX, the service and the archive: one home for each.

- **Spool files**: what MixMonitor writes for one call (`<name>.wav`, `<name>-rx.wav`,
  `<name>-tx.wav`; the name is the attempt id) and the hang-up record the dialplan writes
  beside them (`<name>.end`). The dialplan (asterisk_conf/templates/pbx/extensions.conf),
  the `bind` route, ingest and the watchdog all take the names from here.
- **Ledger subjects**: `recording:<attempt id>`, `case:<case number>`, `recordings:search`,
  `ledger` (the ledger's own housekeeping, e.g. a resolved incident names its recording),
  `visit:<field visit id>` (a field visit's data purged).

Pure: no I/O.
"""
from __future__ import annotations

import re
from pathlib import PurePath

ATTEMPT_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")  # an attempt id: 32 hex digits (uuid4 hex)

# -- spool files ---------------------------------------------------------------------

SPOOL_KINDS = ("mixed", "rx", "tx")  # rx: heard from the debtor; tx: sent to the debtor
END_SUFFIX = ".end"
_SPOOL_FILE = re.compile(r"^([0-9a-f]{32})(?:-(rx|tx))?\.wav$")
_END_FILE = re.compile(r"^([0-9a-f]{32})\.end$")


def recording_name_of(attempt_id: str) -> str:
    """The recording of an answered call: the dialplan starts MixMonitor at answer under
    its attempt's id (tests/unit/test_conf_render.py holds the dialplan to `mixmonitor_argument`)."""
    return attempt_id



def spool_file_names(name: str) -> dict[str, str]:
    """The three file names MixMonitor writes for one call: mixed, rx leg, tx leg."""
    return {"mixed": f"{name}.wav", "rx": f"{name}-rx.wav", "tx": f"{name}-tx.wav"}


def end_file_name(name: str) -> str:
    """The hang-up record the dialplan writes beside the recording."""
    return f"{name}{END_SUFFIX}"


def mixmonitor_argument(directory: str, name: str) -> str:
    """MixMonitor's argument for one call, the files under `directory` as the PBX sees it."""
    files = {kind: f"{directory}/{file}" for kind, file in spool_file_names(name).items()}
    return f"{files['mixed']},r({files['rx']})t({files['tx']})"


def attempt_of_spool_file(file_name: str) -> str | None:
    """The attempt id a spool file (recording or hang-up record) belongs to, else None."""
    match = _SPOOL_FILE.match(file_name) or _END_FILE.match(PurePath(file_name).name)
    return match.group(1) if match else None


# -- ledger subjects -------------------------------------------------------------------

RECORDING_PREFIX = "recording:"
CASE_PREFIX = "case:"
VISIT_PREFIX = "visit:"
SEARCH_SUBJECT = "recordings:search"


def recording_subject(attempt_id: str) -> str:
    return f"{RECORDING_PREFIX}{attempt_id}"


def case_subject(case_id: str) -> str:
    return f"{CASE_PREFIX}{case_id}"


def visit_subject(visit_id: int) -> str:
    return f"{VISIT_PREFIX}{visit_id}"


def attempt_of_subject(subject: str) -> str | None:
    """The attempt id of a `recording:` subject, else None."""
    return subject[len(RECORDING_PREFIX):] if subject.startswith(RECORDING_PREFIX) else None


def case_of_subject(subject: str) -> str | None:
    return subject[len(CASE_PREFIX):] if subject.startswith(CASE_PREFIX) else None
