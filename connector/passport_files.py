"""A local, file-based home for passport and batch credentials, for the command line.

The node's durable store (SQLite / PostgreSQL) comes with the node; until then ``bpc passport``
keeps what it is given in one append-only JSON Lines file per folder, written with fsync so an
acknowledged import survives a crash. Entries are kept in arrival order; the audit, not the
file, decides the order of a passport.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from credentials.passport.chain import MalformedEntry, subject_id

DATA_ENV = "BPC_DATA"
CREDENTIALS_FILE = "credentials.jsonl"

Credential = dict[str, Any] | str


def default_data_dir() -> Path:
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "bpc" / "passports"


class PassportFiles:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or default_data_dir()
        self._path = self.folder / CREDENTIALS_FILE

    def add(self, credential: Credential) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = json.dumps(credential, separators=(",", ":"), ensure_ascii=False) + "\n"
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def __iter__(self) -> Iterator[Credential]:
        if not self._path.exists():
            return
        with open(self._path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    def passport(self, battery_did: str) -> list[Credential]:
        """The credentials about ``battery_did``, in arrival order."""
        return [c for c in self if _subject_or_none(c) == battery_did]

    def json_credentials(self) -> list[dict[str, Any]]:
        return [c for c in self if isinstance(c, dict)]


def _subject_or_none(credential: Credential) -> str | None:
    try:
        return subject_id(credential)
    except MalformedEntry:
        return None
