"""Writing secrets to disk: owner-only from the first byte, atomic, never over another file.

Keys and key hashes must never be briefly world-readable, half-written after a crash, or
silently replaced by a second process writing the same name; this is the one place that gets
those three right.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_new_private_file(path: Path, data: bytes) -> bool:
    """Write ``path`` with mode 0600 unless it exists; False when the name was already taken.

    The temp file is 0600 when created and fsynced before it is published with a hard link,
    which fails if the name exists (on file systems without hard links: a checked
    ``os.replace``); the directory entry is fsynced too. Other failures raise ``OSError``.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            if path.exists():
                return False
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_directory(path.parent)
    return True


def _fsync_directory(directory: Path) -> None:
    # Makes the new directory entry itself durable; not every platform allows it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
