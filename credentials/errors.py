"""Typed problems and exceptions of the credentials library.

Verification never raises for a bad credential: it returns a result listing typed problems,
so callers (the node's VC-API, the CLI, the passport page) can tell a tampered field from an
expired credential from an unknown issuer key. Issuing, on the other hand, refuses loudly with
an exception that carries the same typed problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ProblemType(StrEnum):
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_KEY = "unknown-key"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    WRONG_PROOF_PURPOSE = "wrong-proof-purpose"
    CHALLENGE_MISMATCH = "challenge-mismatch"
    DOMAIN_MISMATCH = "domain-mismatch"
    UNDEFINED_TERM = "undefined-term"
    RELATIVE_IRI = "relative-iri"
    CONTEXT_NOT_ALLOWED = "context-not-allowed"
    NUMBER_OUT_OF_RANGE = "number-out-of-range"
    ISSUER_MISMATCH = "issuer-mismatch"
    UNSUPPORTED_PROOF = "unsupported-proof"
    MALFORMED = "malformed-document"
    # Credential status (Bitstring Status List, credentials/status_list.py).
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    #: The status list could not be fetched, verified or read: fatal by default (fail closed),
    #: a warning when the status checker is configured to allow unknown status.
    STATUS_UNAVAILABLE = "status-unavailable"
    #: Only ever a warning: the credential names a status list but no checker was configured.
    STATUS_NOT_CHECKED = "status-not-checked"
    #: Trust registry (credentials/trust.py): the issuer is not trusted for what it signed.
    UNTRUSTED_ISSUER = "untrusted-issuer"


@dataclass(frozen=True, slots=True)
class Problem:
    type: ProblemType
    message: str
    path: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"type": str(self.type), "message": self.message}
        if self.path is not None:
            out["path"] = self.path
        return out


class CredentialsError(Exception):
    """Base of every error this library raises; carries the typed problem behind it."""

    problem_type: ProblemType = ProblemType.MALFORMED

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.problem = Problem(self.problem_type, message, path)


class MalformedDocument(CredentialsError, ValueError):
    problem_type = ProblemType.MALFORMED


class UndefinedTerm(CredentialsError, ValueError):
    problem_type = ProblemType.UNDEFINED_TERM


class RelativeIri(CredentialsError, ValueError):
    problem_type = ProblemType.RELATIVE_IRI


class DisallowedContext(CredentialsError, ValueError):
    problem_type = ProblemType.CONTEXT_NOT_ALLOWED


class NumberOutOfRange(CredentialsError, ValueError):
    problem_type = ProblemType.NUMBER_OUT_OF_RANGE


class IssuerMismatch(CredentialsError, ValueError):
    problem_type = ProblemType.ISSUER_MISMATCH


class UnsupportedProof(CredentialsError, ValueError):
    problem_type = ProblemType.UNSUPPORTED_PROOF


class DIDError(CredentialsError):
    """A DID could not be parsed or resolved, or does not hold the key a proof names."""

    problem_type = ProblemType.UNKNOWN_KEY


class InvalidDID(DIDError, ValueError):
    pass


class DIDResolutionError(DIDError):
    pass


class KeystoreError(CredentialsError):
    """The keystore cannot be read or written (wrong passphrase, missing key, bad file)."""
