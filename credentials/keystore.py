"""Ed25519 private keys encrypted at rest, one JSON file per key.

A battery DID is only as durable as its private key: whoever loses it can never again append to
that battery's passport in its name, and whoever steals it can append anything. So keys live on
disk encrypted under a passphrase (argon2id + XSalsa20-Poly1305 secretbox), each file written
atomically with owner-only permissions, while the public half (key id, controller, public key,
label, creation time) stays readable without the passphrase so ``bpc key list`` and DID
publishing never need it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
import nacl.utils
from nacl.pwhash import argon2id

from credentials.did_key import mint_battery_did
from credentials.errors import KeystoreError, ProblemType
from credentials.keys import Ed25519Key
from credentials.private_files import write_new_private_file

FORMAT_VERSION = 1
KDF_ALG = "argon2id"

# kdf parameters are read from the file and have to be used *before* the secretbox MAC can tell
# whether the file was tampered with, so a forged file could otherwise make us allocate
# gigabytes or spin for hours. These ceilings are generous (above libsodium's "sensitive"
# preset) and apply to what we write as well, so every file we write can be read back.
_MAX_OPSLIMIT = 4 * argon2id.OPSLIMIT_SENSITIVE
_MAX_MEMLIMIT = 4 * argon2id.MEMLIMIT_SENSITIVE
# Real files are well under 2 KiB; refusing big ones keeps a stray file from being slurped.
_MAX_FILE_BYTES = 64 * 1024
_SEED_BYTES = 32
_CHECK_PERSON = b"bpc-ks-check"
_CHECK_BYTES = 16


class WrongPassphrase(KeystoreError):
    """The passphrase does not open this key file."""


class KeyNotFound(KeystoreError, KeyError):
    """No key with this id is stored; also a ``KeyError`` so mapping-style callers can catch it."""

    problem_type = ProblemType.UNKNOWN_KEY

    def __str__(self) -> str:
        # KeyError's own __str__ would wrap the message in quotes.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """The public facts about a stored key: enough to pick, publish or list it, nothing secret."""

    key_id: str
    controller: str
    public_key_multibase: str
    label: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class _Record:
    info: KeyInfo
    salt: bytes
    opslimit: int
    memlimit: int
    check: bytes
    ciphertext: bytes
    path: Path


def _now() -> datetime:
    """Module-level so tests can pin the clock."""
    return datetime.now(UTC)


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _metadata_digest(info: KeyInfo) -> bytes:
    """Digest of the public fields, sealed inside the ciphertext.

    The public fields sit in the clear so they can be listed without the passphrase; sealing
    their digest means an edited label, key id or (more to the point) creation time, which
    decides the default key, is caught on decryption instead of silently believed.
    """
    canonical = json.dumps(
        {
            "version": FORMAT_VERSION,
            "keyId": info.key_id,
            "controller": info.controller,
            "publicKeyMultibase": info.public_key_multibase,
            "label": info.label,
            "createdAt": _format_time(info.created_at),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    return hashlib.sha256(canonical).digest()


def _passphrase_check(secret_key: bytes) -> bytes:
    """A short tag of the derived key, so a wrong passphrase can be told from a damaged file.

    It gives an attacker nothing the secretbox MAC does not already give (both need the full
    argon2id derivation per guess), but lets us say "wrong passphrase" only when that is true.
    """
    return hashlib.blake2b(
        b"passphrase check", key=secret_key, person=_CHECK_PERSON, digest_size=_CHECK_BYTES
    ).digest()


def _check_kdf_limits(opslimit: object, memlimit: object) -> tuple[int, int]:
    if (
        not isinstance(opslimit, int)
        or isinstance(opslimit, bool)
        or not argon2id.OPSLIMIT_MIN <= opslimit <= _MAX_OPSLIMIT
    ):
        raise KeystoreError(
            f"argon2id opslimit must be an integer in [{argon2id.OPSLIMIT_MIN}, {_MAX_OPSLIMIT}],"
            f" got {opslimit!r}"
        )
    if (
        not isinstance(memlimit, int)
        or isinstance(memlimit, bool)
        or not argon2id.MEMLIMIT_MIN <= memlimit <= _MAX_MEMLIMIT
    ):
        raise KeystoreError(
            f"argon2id memlimit must be an integer in [{argon2id.MEMLIMIT_MIN}, {_MAX_MEMLIMIT}],"
            f" got {memlimit!r}"
        )
    return opslimit, memlimit


class Keystore:
    """A directory of passphrase-encrypted Ed25519 keys.

    Each file records its own salt and kdf limits, so raising the defaults later never strands
    keys written earlier. Derived secretbox keys are cached per instance, keyed by
    (salt, opslimit, memlimit): argon2id is deliberately slow, and signing in a loop should not
    pay for it on every ``get``.
    """

    def __init__(
        self,
        directory: Path,
        passphrase: str | bytes,
        *,
        kdf_opslimit: int | None = None,
        kdf_memlimit: int | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._passphrase = (
            passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
        )
        self._opslimit, self._memlimit = _check_kdf_limits(
            argon2id.OPSLIMIT_INTERACTIVE if kdf_opslimit is None else kdf_opslimit,
            argon2id.MEMLIMIT_INTERACTIVE if kdf_memlimit is None else kdf_memlimit,
        )
        self._derived: dict[tuple[bytes, int, int], bytes] = {}

    def __repr__(self) -> str:
        return f"Keystore({str(self.directory)!r})"

    # -- public API ---------------------------------------------------------------------------

    def add(self, key: Ed25519Key, label: str = "") -> None:
        """Store ``key``; refuses an id already present rather than lose the key it names."""
        if not isinstance(key, Ed25519Key):
            raise KeystoreError(f"can only store an Ed25519Key, got {type(key).__name__}")
        if not isinstance(key.key_id, str) or not key.key_id:
            raise KeystoreError("a stored key needs a non-empty key id")
        if not isinstance(label, str):
            raise KeystoreError(f"label must be a string, got {type(label).__name__}")
        if not self._passphrase:
            raise KeystoreError("refusing to encrypt a key under an empty passphrase")
        path = self._path_for(key.key_id)
        if path.exists():
            raise KeystoreError(f"keystore already holds key {key.key_id!r} ({path})")

        info = KeyInfo(
            key_id=key.key_id,
            controller=key.controller,
            public_key_multibase=key.public_key.multibase,
            label=label,
            created_at=_now(),
        )
        salt = nacl.utils.random(argon2id.SALTBYTES)
        secret_key = self._derive(salt, self._opslimit, self._memlimit)
        box = nacl.secret.SecretBox(secret_key)
        ciphertext = bytes(box.encrypt(key.seed + _metadata_digest(info)))
        document = {
            "version": FORMAT_VERSION,
            "keyId": info.key_id,
            "controller": info.controller,
            "publicKeyMultibase": info.public_key_multibase,
            "label": info.label,
            "createdAt": _format_time(info.created_at),
            "kdf": {
                "alg": KDF_ALG,
                "salt": _b64encode(salt),
                "opslimit": self._opslimit,
                "memlimit": self._memlimit,
                "check": _b64encode(_passphrase_check(secret_key)),
            },
            "ciphertext": _b64encode(ciphertext),
        }
        data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        self._ensure_directory()
        self._write_new(path, data, key.key_id)

    def get(self, key_id: str) -> Ed25519Key:
        """Decrypt the key named ``key_id``."""
        record = self._load(self._existing_path(key_id))
        if record.info.key_id != key_id:
            raise KeystoreError(
                f"corrupted keystore file {record.path}: it names key {record.info.key_id!r},"
                f" not {key_id!r}"
            )
        secret_key = self._derive(record.salt, record.opslimit, record.memlimit)
        if not hmac.compare_digest(_passphrase_check(secret_key), record.check):
            raise WrongPassphrase(
                f"wrong passphrase for key {key_id!r} ({record.path}),"
                " or the file's kdf section was altered"
            )
        try:
            plaintext = nacl.secret.SecretBox(secret_key).decrypt(record.ciphertext)
        except nacl.exceptions.CryptoError as exc:
            raise KeystoreError(
                f"corrupted keystore file {record.path}: the passphrase is right but the"
                " ciphertext does not authenticate (damaged or tampered with)"
            ) from exc
        if len(plaintext) != _SEED_BYTES + hashlib.sha256().digest_size:
            raise KeystoreError(f"corrupted keystore file {record.path}: bad plaintext length")
        seed, sealed_digest = plaintext[:_SEED_BYTES], plaintext[_SEED_BYTES:]
        if not hmac.compare_digest(sealed_digest, _metadata_digest(record.info)):
            raise KeystoreError(
                f"corrupted keystore file {record.path}: its public fields (key id, controller,"
                " public key, label or createdAt) were altered after it was written"
            )
        key = Ed25519Key(seed, key_id)
        if key.public_key.multibase != record.info.public_key_multibase:
            raise KeystoreError(
                f"corrupted keystore file {record.path}: the private key does not match"
                " publicKeyMultibase"
            )
        return key

    def list(self) -> list[KeyInfo]:
        """Public facts of every stored key, oldest first; needs no (correct) passphrase."""
        if not self.directory.is_dir():
            return []
        infos = []
        for path in self.directory.glob("*.json"):
            record = self._load(path)
            if path.name != self._file_name(record.info.key_id):
                raise KeystoreError(
                    f"corrupted keystore file {path}: its name does not match its key id"
                    f" {record.info.key_id!r} (was it renamed or copied by hand?)"
                )
            infos.append(record.info)
        infos.sort(key=lambda info: (info.created_at, info.key_id))
        return infos

    def new_key(self, label: str = "") -> Ed25519Key:
        """Mint a fresh did:key and store it before handing it out, so it is never lost."""
        _, key = mint_battery_did()
        self.add(key, label)
        return key

    def default_key(self) -> Ed25519Key:
        """The oldest key: the one an operator made first is the one they expect to sign with."""
        infos = self.list()
        if not infos:
            raise KeyNotFound(
                f"keystore {self.directory} holds no keys; create one with `bpc key new`"
            )
        return self.get(infos[0].key_id)

    def __contains__(self, key_id: object) -> bool:
        return isinstance(key_id, str) and bool(key_id) and self._path_for(key_id).is_file()

    # -- files --------------------------------------------------------------------------------

    @staticmethod
    def _file_name(key_id: str) -> str:
        # Key ids are DID URLs from outside; hashing them means no "/", ".." or odd unicode in
        # an id can ever choose where a file lands.
        return hashlib.sha256(key_id.encode("utf-8")).hexdigest() + ".json"

    def _path_for(self, key_id: str) -> Path:
        return self.directory / self._file_name(key_id)

    def _existing_path(self, key_id: str) -> Path:
        if not isinstance(key_id, str) or not key_id:
            raise KeyNotFound(f"no key {key_id!r} in keystore {self.directory}")
        path = self._path_for(key_id)
        if not path.is_file():
            raise KeyNotFound(f"no key {key_id!r} in keystore {self.directory}")
        return path

    def _ensure_directory(self) -> None:
        if self.directory.is_dir():
            return
        try:
            self.directory.mkdir(mode=0o700, parents=True)
            # mkdir's mode is filtered through the umask; be explicit about the result.
            os.chmod(self.directory, 0o700)
        except FileExistsError:
            if not self.directory.is_dir():
                raise KeystoreError(
                    f"keystore path {self.directory} exists and is not a directory"
                ) from None
        except OSError as exc:
            raise KeystoreError(
                f"cannot create keystore directory {self.directory}: {exc}"
            ) from exc

    def _write_new(self, path: Path, data: bytes, key_id: str) -> None:
        """Publish a key file; two processes adding the same key id cannot overwrite each
        other (see ``credentials.private_files``)."""
        try:
            written = write_new_private_file(path, data)
        except OSError as exc:
            raise KeystoreError(f"cannot write keystore file {path}: {exc}") from exc
        if not written:
            raise KeystoreError(f"keystore already holds key {key_id!r} ({path})")

    def _load(self, path: Path) -> _Record:
        try:
            with path.open("rb") as handle:
                raw = handle.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise KeyNotFound(f"keystore file {path} disappeared while reading it") from None
        except OSError as exc:
            raise KeystoreError(f"cannot read keystore file {path}: {exc}") from exc
        if len(raw) > _MAX_FILE_BYTES:
            raise KeystoreError(f"corrupted keystore file {path}: larger than {_MAX_FILE_BYTES} B")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise KeystoreError(f"corrupted keystore file {path}: not JSON ({exc})") from exc
        return _parse_record(doc, path)

    # -- crypto -------------------------------------------------------------------------------

    def _derive(self, salt: bytes, opslimit: int, memlimit: int) -> bytes:
        cache_key = (salt, opslimit, memlimit)
        secret_key = self._derived.get(cache_key)
        if secret_key is None:
            try:
                secret_key = argon2id.kdf(
                    nacl.secret.SecretBox.KEY_SIZE,
                    self._passphrase,
                    salt,
                    opslimit=opslimit,
                    memlimit=memlimit,
                )
            except (nacl.exceptions.CryptoError, ValueError, MemoryError) as exc:
                raise KeystoreError(f"argon2id key derivation failed: {exc}") from exc
            self._derived[cache_key] = secret_key
        return secret_key


def _parse_record(doc: Any, path: Path) -> _Record:
    def bad(reason: str) -> KeystoreError:
        return KeystoreError(f"corrupted keystore file {path}: {reason}")

    def text(container: dict[str, Any], name: str, *, allow_empty: bool = False) -> str:
        value = container.get(name)
        if not isinstance(value, str) or (not value and not allow_empty):
            raise bad(f"{name!r} must be a{'' if allow_empty else ' non-empty'} string")
        return value

    def b64(container: dict[str, Any], name: str) -> bytes:
        try:
            return base64.b64decode(text(container, name), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad(f"{name!r} is not valid base64") from exc

    if not isinstance(doc, dict):
        raise bad("expected a JSON object")
    version = doc.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise bad(f"unsupported format version {version!r} (this code reads {FORMAT_VERSION})")
    created_text = text(doc, "createdAt")
    try:
        created_at = datetime.fromisoformat(created_text)
    except ValueError as exc:
        raise bad(f"createdAt {created_text!r} is not an ISO 8601 timestamp") from exc
    if created_at.tzinfo is None:
        raise bad(f"createdAt {created_text!r} has no time zone")
    info = KeyInfo(
        key_id=text(doc, "keyId"),
        controller=text(doc, "controller"),
        public_key_multibase=text(doc, "publicKeyMultibase"),
        label=text(doc, "label", allow_empty=True),
        created_at=created_at.astimezone(UTC),
    )
    kdf = doc.get("kdf")
    if not isinstance(kdf, dict):
        raise bad("'kdf' must be an object")
    if kdf.get("alg") != KDF_ALG:
        raise bad(f"unsupported kdf {kdf.get('alg')!r} (expected {KDF_ALG!r})")
    salt = b64(kdf, "salt")
    if len(salt) != argon2id.SALTBYTES:
        raise bad(f"kdf salt must be {argon2id.SALTBYTES} bytes, got {len(salt)}")
    try:
        opslimit, memlimit = _check_kdf_limits(kdf.get("opslimit"), kdf.get("memlimit"))
    except KeystoreError as exc:
        raise bad(str(exc)) from None
    check = b64(kdf, "check")
    if len(check) != _CHECK_BYTES:
        raise bad(f"kdf check must be {_CHECK_BYTES} bytes, got {len(check)}")
    ciphertext = b64(doc, "ciphertext")
    return _Record(info, salt, opslimit, memlimit, check, ciphertext, path)
