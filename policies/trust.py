"""Trust lists: which issuers a node believes, for which credential types.

Why the evaluator needs one although it does not verify: a signature only proves *who* issued a
credential. "Certified recycler" means something only when the issuer is one this node accepts
for that role (DESIGN.md: "A role is proven with a credential from an issuer on the node's
trust list, never by a claim in a request"). ``credentials.Verifier`` checks signatures, status
and validity; the trust list decides whether a verified credential counts. An empty list
trusts nobody, so a node that forgot to configure one opens nothing (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from credentials.trust import credential_type_name

#: The key that trusts an issuer for every credential type (e.g. the Catena-X operating
#: company's issuer, which issues Membership, framework and BPN credentials alike).
ANY_TYPE = "*"


class IssuerTrust(Protocol):
    """What the evaluator asks of a trust source: is ``issuer`` believed for this type?

    ``TrustList`` (below) is the static, in-memory one; a node uses
    ``credentials.trust.TrustRegistry``, which adds federated lists and their scopes."""

    def trusts(self, issuer: str, credential_type: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class TrustList:
    """Issuer DIDs trusted per credential type (short names, compared case-insensitively)."""

    issuers: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, mapping: Mapping[str, Iterable[str]]) -> TrustList:
        """``TrustList.of({"DismantlerCredential": ["did:web:kba.example"], "*": [...]})``."""
        return cls(MappingProxyType({
            credential_type_name(kind).casefold() if kind != ANY_TYPE else ANY_TYPE:
                frozenset(dids)
            for kind, dids in mapping.items()
        }))

    def issuers_for(self, credential_type: str) -> frozenset[str]:
        """Every issuer trusted for ``credential_type`` (including the any-type ones)."""
        name = credential_type_name(credential_type).casefold()
        return self.issuers.get(name, frozenset()) | self.issuers.get(ANY_TYPE, frozenset())

    def trusts(self, issuer: str, credential_type: str) -> bool:
        return issuer in self.issuers_for(credential_type)

    def to_json(self) -> dict[str, list[str]]:
        return {kind: sorted(dids) for kind, dids in sorted(self.issuers.items())}

    @classmethod
    def from_json(cls, data: Any) -> TrustList:
        """From ``{"<CredentialType>" | "*": ["did:…", …]}``; ``ValueError`` on other shapes."""
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(d, str) for d in v)
            for k, v in data.items()
        ):
            raise ValueError("a trust list maps credential types to lists of issuer DIDs")
        return cls.of(data)


__all__ = ["ANY_TYPE", "IssuerTrust", "TrustList", "credential_type_name"]
