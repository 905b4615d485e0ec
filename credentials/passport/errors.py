"""Why an entry does not fit a passport: one hierarchy for the typed models, ``append`` and
``audit``, so a caller catches ``PassportError`` once whichever of them refused."""

from __future__ import annotations

from credentials.errors import CredentialsError, MalformedDocument, ProblemType


class PassportError(CredentialsError):
    """An entry does not fit the passport; ``append`` raised it and changed nothing."""


class MalformedEntry(PassportError, ValueError):
    """The entry cannot be read as a passport entry (not a credential, no subject, bad JWT)."""


class BrokenLink(PassportError):
    """``previousCredential`` does not name the entry the chain says must come before."""


class SubjectMismatch(PassportError):
    """The entry is about another DID than this passport's battery."""


class CustodyViolation(PassportError):
    """The entry is not issued by the party holding custody at that point of the chain."""

    problem_type = ProblemType.ISSUER_MISMATCH


class UnknownCredentialType(PassportError, MalformedDocument):
    """The credential has a type ``vocab/PASSPORT.md`` does not define, or none that fits."""


class InvalidRepurposing(PassportError):
    """A ``RepurposingCredential`` out of place, or not naming the original battery."""
