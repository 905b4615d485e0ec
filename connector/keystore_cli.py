"""Opening the operator's keystore from the command line: where it lives, which passphrase."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from credentials.keystore import Keystore

PASSPHRASE_ENV = "BPC_KEYSTORE_PASSPHRASE"
KEYSTORE_ENV = "BPC_KEYSTORE"


class CliError(Exception):
    """A problem the user can fix; printed without a traceback, exit code 2."""


def default_keystore_dir() -> Path:
    if os.environ.get(KEYSTORE_ENV):
        return Path(os.environ[KEYSTORE_ENV])
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "bpc" / "keystore"


def read_passphrase(*, confirm: bool) -> str:
    """From ``$BPC_KEYSTORE_PASSPHRASE``, else a hidden prompt when a person is at the terminal."""
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if passphrase:
        return passphrase
    if not sys.stdin.isatty():
        raise CliError(
            f"the keystore needs a passphrase: set {PASSPHRASE_ENV} "
            "(no terminal to ask on)"
        )
    import typer

    value: str = typer.prompt("Keystore passphrase", hide_input=True,
                              confirmation_prompt=confirm)
    if not value:
        raise CliError("the keystore passphrase must not be empty")
    return value


def open_keystore(directory: Path | None, *, adding: bool = False) -> Keystore:
    """Open the keystore; before adding a key, prove the passphrase opens the keys already there,
    so one store never ends up with keys under different passphrases."""
    folder = directory or default_keystore_dir()
    existing = Keystore(folder, "").list()
    keystore = Keystore(folder, read_passphrase(confirm=adding and not existing))
    if adding and existing:
        keystore.get(existing[0].key_id)
    return keystore
