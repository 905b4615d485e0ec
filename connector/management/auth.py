"""The operator API key: who may manage the node and issue in its name.

The key is a bearer token (``Authorization: Bearer …``). Unless the operator sets one in the
config, the node generates it at first start, ``bpc serve`` prints it once, and only a
salted HMAC-SHA256 of it is kept (``<data_dir>/operator-key.json``, mode 0600): a copy of
the data directory does not give anyone the key. A lost key is replaced by deleting that file
and restarting. Requests are checked in constant time, and a refusal is a 401 problem with a
``WWW-Authenticate`` challenge (RFC 6750) so clients know what to send.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from connector.problems import Handler, ProblemDetails, ProblemError
from credentials.private_files import write_new_private_file

OPERATOR_KEY_FILE = "operator-key.json"
FORMAT_VERSION = 1
HASH_ALG = "hmac-sha256"
#: A recognisable prefix lets secret scanners and people tell the key from other tokens.
KEY_PREFIX = "bpc_op_"
REALM = "bpc-node"
_SALT_BYTES = 16
#: Refuse absurd headers before hashing them; real keys are under 100 characters.
_MAX_TOKEN_CHARS = 1024


class OperatorKeyError(Exception):
    """The operator key file cannot be read or written."""


def generate_operator_key() -> str:
    """A fresh key: 256 random bits, URL-safe, prefixed."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _digest(salt: bytes, key: str) -> bytes:
    return hmac.new(salt, key.encode("utf-8"), hashlib.sha256).digest()


class OperatorAuth:
    """Checks presented keys against the stored salted hash; never holds the key for long.

    ``generated_key`` is set only when this instance created the key, so the process that
    made it can show it to the operator exactly once (``take_generated_key``).
    """

    def __init__(self, salt: bytes, digest: bytes, *, source: str) -> None:
        self._salt = salt
        self._digest = digest
        self.source = source
        self._generated_key: str | None = None

    @classmethod
    def from_key(cls, key: str, *, source: str = "config") -> OperatorAuth:
        salt = secrets.token_bytes(_SALT_BYTES)
        return cls(salt, _digest(salt, key), source=source)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> OperatorAuth:
        """The key stored in ``data_dir``, or a new one (stored hashed, kept to be shown once).

        Blocking file I/O; cheap, but call it from a thread when a loop is running.
        """
        path = data_dir / OPERATOR_KEY_FILE
        if path.exists():
            return cls._load(path)
        key = generate_operator_key()
        salt = secrets.token_bytes(_SALT_BYTES)
        document = {
            "version": FORMAT_VERSION,
            "alg": HASH_ALG,
            "salt": base64.b64encode(salt).decode("ascii"),
            "hash": base64.b64encode(_digest(salt, key)).decode("ascii"),
            "createdAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        if not _write_new(path, (json.dumps(document, indent=2) + "\n").encode("utf-8")):
            return cls._load(path)  # another process started at the same moment and won
        auth = cls(salt, _digest(salt, key), source=str(path))
        auth._generated_key = key
        return auth

    @classmethod
    def _load(cls, path: Path) -> OperatorAuth:
        def bad(reason: str) -> OperatorKeyError:
            return OperatorKeyError(
                f"{path} is damaged ({reason}); delete it and restart to generate a new"
                " operator key"
            )

        try:
            document = json.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise OperatorKeyError(f"cannot read {path}: {exc}") from exc
        except ValueError as exc:
            raise bad("not JSON") from exc
        if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
            raise bad(f"expected a version {FORMAT_VERSION} object")
        if document.get("alg") != HASH_ALG:
            raise bad(f"unsupported alg {document.get('alg')!r}")
        try:
            salt = base64.b64decode(str(document["salt"]), validate=True)
            digest = base64.b64decode(str(document["hash"]), validate=True)
        except (KeyError, binascii.Error, ValueError) as exc:
            raise bad("salt or hash missing or not base64") from exc
        if len(salt) < _SALT_BYTES or len(digest) != hashlib.sha256().digest_size:
            raise bad("salt or hash of the wrong length")
        return cls(salt, digest, source=str(path))

    def take_generated_key(self) -> str | None:
        """The key this instance generated, once; afterwards only its hash remains."""
        key, self._generated_key = self._generated_key, None
        return key

    def matches(self, presented: str) -> bool:
        if not presented or len(presented) > _MAX_TOKEN_CHARS:
            return False
        return hmac.compare_digest(_digest(self._salt, presented), self._digest)

    def check(self, request: web.Request) -> None:
        """Raise a 401 problem unless the request carries the operator key as bearer token."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized(
                "this endpoint needs the operator API key: send 'Authorization: Bearer <key>'",
                f'Bearer realm="{REALM}"',
            )
        if not self.matches(token.strip()):
            raise _unauthorized(
                "the operator API key is not valid",
                f'Bearer realm="{REALM}", error="invalid_token"',
            )


OPERATOR_AUTH = web.AppKey("operator_auth", OperatorAuth)


def _unauthorized(detail: str, challenge: str) -> ProblemError:
    return ProblemError(
        ProblemDetails(401, "unauthorized", "Operator API key required", detail),
        headers={"WWW-Authenticate": challenge},
    )


def require_operator(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Handler:
    """Decorate a route handler so it runs only for requests carrying the operator key."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        request.config_dict[OPERATOR_AUTH].check(request)
        return await handler(request)

    return guarded


@web.middleware
async def operator_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The same check for a whole (sub-)application, such as the management API."""
    request.config_dict[OPERATOR_AUTH].check(request)
    return await handler(request)


def _write_new(path: Path, data: bytes) -> bool:
    """Write ``path`` (0600 from the first byte) unless it exists; False if it already did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return write_new_private_file(path, data)
    except OSError as exc:
        raise OperatorKeyError(f"cannot write {path}: {exc}") from exc
