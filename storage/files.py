"""Files at rest: nothing of debtors' data is readable by other local users.

Every file the service writes is 0640 (0440 once it is evidence) and every directory 0750,
whatever the process's umask (`dunline` also sets umask 027 for itself): the owner and a
shared group (the PBX's spool is shared with it) may read; others get nothing. Secrets
(keys, the journal) are 0600. See docs/operations.md, "Files at rest".
"""
from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o640
READ_ONLY_MODE = 0o440  # archived evidence: read-only for its owner and group
DIR_MODE = 0o750
SECRET_MODE = 0o600
UMASK = 0o027


def make_dirs(path: Path, mode: int = DIR_MODE) -> None:
    """mkdir -p where every directory made gets `mode` (Path.mkdir gives missing parents
    the umask's default instead)."""
    path = Path(path)
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=mode)
        except FileExistsError:
            continue
        os.chmod(directory, mode)  # mkdir's mode is cut by the umask


def tighten(path: Path, mode: int = FILE_MODE) -> None:
    """Take away from an existing file what others may do with it (never adds rights)."""
    try:
        current = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        return
    if current & ~mode:
        os.chmod(path, current & mode)
