"""Files only the service's own user may read: the var/ directory and the embedded SQLite database in it.

The database holds encrypted card keys beside personal data and password hashes, the queue under var/ holds task
arguments, var/media holds uploaded documents: none of it is for the other accounts of the machine. The process
umask (0644 files, 0755 directories by default) would let them read it all.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_directory_ensure(path: Path) -> None:
    """Create `path` (and missing parents) readable by the owner only; tighten it if it exists already."""
    path.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != PRIVATE_DIRECTORY_MODE:
        path.chmod(PRIVATE_DIRECTORY_MODE)


def private_file_ensure(path: Path) -> None:
    """Create `path` empty and owner-only if it is missing (SQLite takes an empty file as an empty database, and
    gives its journal and WAL files the database file's mode); tighten it if it exists already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE_MODE))
    if path.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
        path.chmod(PRIVATE_FILE_MODE)
