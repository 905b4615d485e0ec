"""The node's wallet: the credentials issued *to* this node, which it presents to verifiers.

A credential enters the wallet only when the node itself would accept it from anyone else:
its proof verifies (with the node's ``Verifier``, which also reads its status list, so a
revoked or suspended credential is refused), it is issued to this node (every
``credentialSubject.id`` is the node's DID: DCP presents only credentials whose subject is the
holder), and it is valid now. Keeping a bad credential would only make the node present it
later and fail the verifier's checks where the operator cannot see why.

Removing a credential (``removed_at``) keeps the row, so its id stays taken and the wallet's
history is kept; removed and expired credentials are never presented (``presentable``).

A credential without an ``id`` gets one derived from its content (a name-based UUID over its
JCS form), so adding the same id-less credential twice is a conflict, not a second copy.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime
from typing import Any

from connector.store import Store, WalletCredential
from credentials.errors import CredentialsError, Problem, ProblemType
from credentials.jcs import canonical_json
from credentials.model import check_credential_shape, issuer_id, types_of
from credentials.timestamps import parse_datetime
from credentials.trust import GENERIC_TYPES, credential_type_name
from credentials.verifier import Verifier, VerifyOptions

logger = logging.getLogger(__name__)

#: Namespace of the content-derived ids of credentials that carry none.
_CONTENT_ID_NAMESPACE = uuid.UUID("6f1c2b0e-5d4a-4c47-9a3e-0b7d1f2a8c55")
_PAGE = 200


class WalletError(Exception):
    """Why a credential is not taken into the wallet (rendered as problem JSON).

    ``status`` 400 for a document that is not a credential at all, 422 for a credential this
    node will not hold (not verified, revoked, not issued to it, expired)."""

    def __init__(self, status: int, slug: str, title: str, detail: str,
                 problems: list[Problem] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.problems = problems or []


def short_types(document: dict[str, Any]) -> tuple[str, ...]:
    """The credential's type names without ``VerifiableCredential`` (``cx:XCredential`` and
    full IRIs shortened the way the trust registry and policies name them)."""
    names: list[str] = []
    for value in types_of(document):
        name = credential_type_name(value)
        if name not in GENERIC_TYPES and name not in names:
            names.append(name)
    return tuple(names)


def wallet_id(document: dict[str, Any]) -> str:
    """The credential's own ``id``, else a name-based ``urn:uuid`` of its content."""
    own = document.get("id")
    if isinstance(own, str) and own:
        return own
    digest = hashlib.sha256(canonical_json(document)).hexdigest()
    return f"urn:uuid:{uuid.uuid5(_CONTENT_ID_NAMESPACE, digest)}"


def valid_until_of(document: dict[str, Any]) -> datetime | None:
    """``validUntil`` (VCDM 2.0) or ``expirationDate`` (1.1), the earlier if both."""
    ends = [parse_datetime(document[name], path=name)
            for name in ("validUntil", "expirationDate") if name in document]
    return min(ends) if ends else None


def _valid_from_of(document: dict[str, Any]) -> datetime | None:
    starts = [parse_datetime(document[name], path=name)
              for name in ("validFrom", "issuanceDate") if name in document]
    return max(starts) if starts else None


def subject_ids(document: dict[str, Any]) -> list[str | None]:
    """Each ``credentialSubject``'s ``id`` (``None`` for a subject without one)."""
    subject = document.get("credentialSubject")
    subjects = subject if isinstance(subject, list) else [subject]
    ids: list[str | None] = []
    for item in subjects:
        value = item.get("id") if isinstance(item, dict) else None
        ids.append(value if isinstance(value, str) else None)
    return ids


def _malformed(detail: str, problems: list[Problem] | None = None) -> WalletError:
    return WalletError(400, "malformed-credential", "The credential is malformed", detail,
                       problems or [])


def _shape(document: Any, holder_did: str) -> None:
    """Checks that need no key and no network: shape, types, dates, subject."""
    if not isinstance(document, dict):
        raise _malformed("send the credential itself, a JSON object")
    if isinstance(document.get("verifiableCredential"), dict) and "proof" not in document:
        raise _malformed("send the credential itself, not {\"verifiableCredential\": …} "
                         "(the VC-API issue answer): its verifiableCredential member")
    try:
        check_credential_shape(document)
        issuer_id(document)
        short_types(document)
        valid_until_of(document)
        _valid_from_of(document)
    except CredentialsError as exc:
        raise _malformed(str(exc), [exc.problem]) from None
    if "proof" not in document:
        raise _malformed("the credential carries no proof: the wallet holds Data Integrity "
                         "secured credentials only")
    ids = subject_ids(document)
    if any(value != holder_did for value in ids):
        named = ", ".join(str(value) for value in ids)
        raise WalletError(422, "not-issued-to-this-node", "Not issued to this node",
                          f"credentialSubject.id must be this node's DID {holder_did} "
                          f"(the credential names {named})")


async def admit(document: Any, *, holder_did: str, verifier: Verifier,
                now: datetime) -> WalletCredential:
    """The wallet record for ``document``, or ``WalletError`` saying why it is refused.

    Nothing is stored here; the caller writes the record (and answers 409 for a taken id)."""
    _shape(document, holder_did)
    assert isinstance(document, dict)
    try:
        result = await verifier.verify_credential(document, VerifyOptions(now=now))
    except Exception:
        # The library choked instead of refusing with a typed problem: still the document's
        # fault (a 400), never a credential taken in unverified.
        logger.exception("verifying a credential for the wallet failed")
        raise _malformed("the credential could not be processed") from None
    if not result.verified:
        kinds = {problem.type for problem in result.problems}
        text = "; ".join(f"{p.type}: {p.message}" for p in result.problems)
        if kinds <= {ProblemType.MALFORMED, ProblemType.UNSUPPORTED_PROOF,
                     ProblemType.UNDEFINED_TERM, ProblemType.RELATIVE_IRI,
                     ProblemType.CONTEXT_NOT_ALLOWED, ProblemType.NUMBER_OUT_OF_RANGE}:
            raise _malformed(text, result.problems)
        raise WalletError(422, "credential-not-verified", "The credential did not verify",
                          text, result.problems)
    return WalletCredential(
        id=wallet_id(document), types=short_types(document), issuer=issuer_id(document),
        document=document, valid_until=valid_until_of(document),
    )


def presentable(record: WalletCredential, now: datetime) -> bool:
    """Shown to verifiers: not removed, and within its validity period at ``now``."""
    if record.removed_at is not None:
        return False
    if record.valid_until is not None and record.valid_until <= now:
        return False
    try:
        starts = _valid_from_of(record.document)
    except CredentialsError:
        return False
    return starts is None or starts <= now


async def presentable_credentials(store: Store, now: datetime) -> list[WalletCredential]:
    """Every credential the node may present now, in id order (a wallet holds a handful)."""
    found: list[WalletCredential] = []
    after: str | None = None
    async with store.read() as reader:
        while True:
            rows = await reader.list_wallet_credentials(after=after, limit=_PAGE)
            found.extend(row for row in rows if presentable(row, now))
            if len(rows) < _PAGE:
                return found
            after = rows[-1].id


def _time(value: datetime | None) -> str | None:
    """As the other management views write times (ISO 8601, ``Z``)."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def credential_view(record: WalletCredential, *, with_document: bool = True) -> dict[str, Any]:
    """The management API's JSON for a held credential."""
    view: dict[str, Any] = {
        "id": record.id,
        "types": list(record.types),
        "issuer": record.issuer,
        "validUntil": _time(record.valid_until),
        "removedAt": _time(record.removed_at),
        "createdAt": _time(record.created_at),
    }
    if with_document:
        view["credential"] = record.document
    return view


__all__ = ["WalletError", "admit", "credential_view", "presentable",
           "presentable_credentials", "short_types", "subject_ids", "valid_until_of",
           "wallet_id"]
