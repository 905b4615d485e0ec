"""What the engine knows about a request: who asks, with which credentials, for what, when.

Why a plain value object: the evaluator is pure (no I/O, no clock, no store), so the catalog,
the negotiation state machine, the data plane and the tests all build one of these and get the
same answer for the same facts. Everything the caller does not know stays ``None`` and makes the
constraints that need it ``UNKNOWN`` — never silently true.

Credentials arrive *already verified* (signature, status, validity — ``credentials.Verifier``);
the engine reads their claims and applies the trust list, and it still re-checks the validity
window against ``now`` (a policy monitor evaluates long after the presentation was verified) and
that the subject is the requester (a credential lent by another participant proves nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from credentials.errors import CredentialsError
from credentials.jose import credential_from_claims
from credentials.model import issuer_id, types_of
from credentials.timestamps import parse_datetime
from policies.namespaces import CX_CREDENTIALS, USE
from policies.trust import IssuerTrust, TrustList, credential_type_name


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """The facts a policy is evaluated against.

    ``participant_did``  the requesting participant (the DSP/DCP-authenticated DID).
    ``now``              the instant of evaluation (timezone-aware).
    ``agreement_start``  when the agreement was concluded; ``None`` before there is one
                         (catalog, new negotiation): windows counted from it have not begun.
    ``bpn``              the requester's BPNL when the caller resolved it (BDRS, config);
                         otherwise read from a trusted BpnCredential / MembershipCredential.
    ``credentials``      verified credentials (VC documents, or VC-JWT claim sets).
    ``trust``            which issuers count for which credential type (empty: none).
    ``purpose``          the usage purpose the requester declared (``cx.circular.dpp:1``).
    ``access_count``     how often the agreement's data was used so far (``odrl:count``).
    ``business_partner_groups``  the provider's groups for this requester's BPN.
    ``contract_references``      contract references both parties have (``ContractReference``).
    ``action``           the action asked for (ODRL ``use``; Catena-X ``access`` for catalogs).
    ``monitor``          policy-monitor mode: the agreement was concluded, so claims checked at
                         negotiation (credentials, BPN, groups, purpose, contract references)
                         are taken as still holding; time, count and participant constraints
                         are evaluated as usual. ``is_in_force`` uses it.
    """

    participant_did: str
    now: datetime
    agreement_start: datetime | None = None
    bpn: str | None = None
    credentials: Sequence[Mapping[str, Any]] = ()
    trust: IssuerTrust = field(default_factory=TrustList)
    purpose: str | None = None
    access_count: int = 0
    business_partner_groups: frozenset[str] | None = None
    contract_references: frozenset[str] | None = None
    action: str = USE
    monitor: bool = False

    def __post_init__(self) -> None:
        for name in ("now", "agreement_start"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"EvaluationContext.{name} must be timezone-aware")
        if self.access_count < 0:
            raise ValueError("EvaluationContext.access_count cannot be negative")

    def held(self) -> tuple[HeldCredential, ...]:
        """The credentials as the evaluator reads them (unreadable ones are skipped)."""
        found = []
        for document in self.credentials:
            held = HeldCredential.read(document)
            if held is not None:
                found.append(held)
        return tuple(found)


@dataclass(frozen=True, slots=True)
class HeldCredential:
    """One credential's type names, issuer, subjects and validity window."""

    types: frozenset[str]
    issuer: str
    subjects: tuple[Mapping[str, Any], ...]
    valid_from: datetime | None
    valid_until: datetime | None

    @classmethod
    def read(cls, document: Mapping[str, Any]) -> HeldCredential | None:
        """Parse a VC (VCDM 1.1 or 2.0) or VC-JWT claims; None when it is not readable."""
        try:
            data = dict(document)
            if "vc" in data:
                data = credential_from_claims(data)
            types = frozenset(credential_type_name(t).casefold() for t in types_of(data))
            issuer = issuer_id(data)
            raw_subject = data.get("credentialSubject")
            subjects = tuple(s for s in (raw_subject if isinstance(raw_subject, list)
                                         else [raw_subject]) if isinstance(s, dict))
            start = data.get("validFrom", data.get("issuanceDate"))
            end = data.get("validUntil", data.get("expirationDate"))
            valid_from = parse_datetime(start, path="validFrom") if start is not None else None
            valid_until = parse_datetime(end, path="validUntil") if end is not None else None
        except (CredentialsError, TypeError, ValueError):
            return None
        return cls(types, issuer, subjects, valid_from, valid_until)

    def has_type(self, name: str) -> bool:
        return credential_type_name(name).casefold() in self.types

    def claim_values(self, subject: Mapping[str, Any], name: str) -> frozenset[str] | None:
        """A subject claim as a set of strings (``activityType``, ``allowedVehicleBrands``),
        looked up bare or under the Catena-X credentials namespace; None when absent."""
        value = subject.get(name, subject.get(CX_CREDENTIALS + name))
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        strings = []
        for item in items:
            if isinstance(item, dict):
                item = item.get("@value")
            if isinstance(item, str):
                strings.append(item)
        return frozenset(strings)


@dataclass(frozen=True, slots=True)
class CredentialSearch:
    """The credentials of one type that count for the requester, and why others do not."""

    usable: tuple[tuple[HeldCredential, Mapping[str, Any]], ...]  # (credential, its subject)
    rejected: tuple[str, ...]

    def note(self) -> str:
        """``" (one was presented, but: …)"`` for a missing hint, or ``""``."""
        if not self.rejected:
            return ""
        return " (presented, but " + "; ".join(dict.fromkeys(self.rejected)) + ")"


def find_credentials(context: EvaluationContext, credential_type: str) -> CredentialSearch:
    """Trusted, currently valid ``credential_type`` credentials about the requester."""
    usable: list[tuple[HeldCredential, Mapping[str, Any]]] = []
    rejected: list[str] = []
    for held in context.held():
        if not held.has_type(credential_type):
            continue
        if not context.trust.trusts(held.issuer, credential_type):
            rejected.append(f"its issuer {held.issuer} is not trusted for {credential_type}")
            continue
        if held.valid_until is not None and context.now > held.valid_until:
            rejected.append(f"it expired at {held.valid_until.isoformat()}")
            continue
        if held.valid_from is not None and context.now < held.valid_from:
            rejected.append(f"it is valid only from {held.valid_from.isoformat()}")
            continue
        mine = [s for s in held.subjects if s.get("id") == context.participant_did]
        if not mine:
            rejected.append(f"it was issued to another subject, not {context.participant_did}")
            continue
        usable.extend((held, subject) for subject in mine)
    return CredentialSearch(tuple(usable), tuple(rejected))


__all__ = ["CredentialSearch", "EvaluationContext", "HeldCredential", "find_credentials"]
