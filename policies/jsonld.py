"""Just enough JSON-LD to read compact policies: term and prefix resolution, never a fetch.

Why not pyld: a policy is read on every catalog request and every data-plane call, and DSP
messages are designed to be processed as plain JSON (shared/notes/dataspace-protocol.md §0.2).
What the engine needs from JSON-LD is narrow — which IRI does ``Membership``,
``cx-policy:Membership`` or ``odrl:use`` stand for, given the contexts the policy (or the
message around it) names — so this module keeps an *active context* of term definitions,
prefixes and ``@vocab``, built from bundled context documents and inline contexts, and expands
or compacts single terms with it.

Context URLs are looked up in this module's table (the contexts a policy can meet: DSP 2025-1,
ODRL, the Catena-X 2025-09 and legacy policy contexts), then in ``vocab``'s bundle; any other
URL is refused (``UnknownContext``) rather than fetched, because an unknown context could
redefine any term. Protected terms (``@protected``) may not be redefined with another IRI,
as JSON-LD 1.1 requires; the Catena-X and DSP contexts are protected, so a policy cannot
quietly move ``Membership`` to another namespace.

Every policy starts from an implicit base: every ODRL 2.2 term bare (``permission``, ``eq``,
``use``, ``dateTime``, ``refinement`` … — the DSP 2025-1 ODRL profile and what the DSP
specification's own examples write bare, such as ``"leftOperand": "dateTime"``), and the
prefixes ``odrl``, ``cx-policy`` (2025-09), ``edc``, ``dspace`` and ``bpc-policy``. DSP messages
carry policies under the message's context, so a policy without an ``@context`` must still mean
what its author meant; and a bare ODRL word the engine does not evaluate (``conflict``,
``refinement``) must be recognised as ODRL in order to be refused rather than carried along.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any

from policies.errors import MalformedPolicy, UnknownContext
from policies.namespaces import (
    BPC_POLICY,
    CX_LEGACY_CONTEXT,
    CX_ODRL_CONTEXT,
    CX_POLICY,
    CX_POLICY_CONTEXT,
    CX_POLICY_LEGACY,
    DSP_CONTEXT,
    DSP_ODRL_PROFILE,
    DSPACE,
    EDC,
    ODRL,
    ODRL_CONTEXT,
    ODRL_CONTEXT_HTTPS,
)

# --- the bundled policy contexts -------------------------------------------------------------
# Written out as data (the package ships no data files for ``policies``); a test compares each
# with the copy under shared/dsp so they cannot drift.

#: Terms of https://w3id.org/catenax/2025/9/policy/context.jsonld (each is ``cx-policy:<term>``).
CX_2025_9_TERMS = (
    "access", "AffiliatesBpnl", "AffiliatesRegion", "BusinessPartnerGroup",
    "BusinessPartnerNumber", "ConfidentialInformationMeasures", "ConfidentialInformationSharing",
    "ContractReference", "ContractTermination", "DataFrequency", "DataProvisioningEndDate",
    "DataProvisioningEndDurationDays", "DataUsageEndDate", "DataUsageEndDurationDays",
    "DataUsageEndDefinition", "ExclusiveUsage", "FrameworkAgreement", "JurisdictionLocation",
    "JurisdictionLocationReference", "Liability", "Membership", "Precedence", "UsagePurpose",
    "UsageRestriction", "VersionChanges", "Warranty", "WarrantyDurationMonths",
    "WarrantyDefinition",
)

#: Terms of the pre-2025-09 context (https://w3id.org/tractusx/policy/v1.0.0, profile 2405,
#: namespace https://w3id.org/catenax/policy/; tractusx-profiles cx/credentials/schema/context).
CX_LEGACY_TERMS = (
    "Dismantler", "Dismantler.activityType", "Dismantler.allowedBrands", "Membership",
    "UsagePurpose", "ContractReference", "FrameworkAgreement",
    "FrameworkAgreement.behavioraltwin", "FrameworkAgreement.pcf", "FrameworkAgreement.quality",
    "FrameworkAgreement.resiliency", "FrameworkAgreement.sustainability",
    "FrameworkAgreement.traceability",
)

#: Terms of the DSP 2025-1 ODRL profile (= https://w3id.org/catenax/2025/9/policy/odrl.jsonld).
DSP_ODRL_TERMS = (
    "Policy", "Rule", "profile", "prohibit", "Agreement", "Assertion", "Offer", "Set", "Asset",
    "hasPolicy", "target", "assignee", "assigner", "Action", "action", "Permission",
    "permission", "Prohibition", "prohibition", "obligation", "use", "Duty", "duty",
    "Constraint", "constraint", "Operator", "operator", "RightOperand", "rightOperand",
    "LeftOperand", "leftOperand", "eq", "gt", "gteq", "lt", "lteq", "neq", "isA", "hasPart",
    "isPartOf", "isAllOf", "isAnyOf", "isNoneOf", "or", "xone", "and", "andSequence",
)

#: Terms of the W3C ODRL 2.2 context (http://www.w3.org/ns/odrl.jsonld), all ``odrl:<term>``,
#: besides its keyword aliases ``uid`` (@id) and ``type`` (@type).
ODRL_TERMS = tuple("""
Action Agreement Assertion Asset AssetCollection ConflictTerm Constraint Duty LeftOperand
LogicalConstraint Offer Operator Party PartyCollection PartyScope Permission Policy Privacy
Prohibition Request RightOperand Rule Set Ticket absolutePosition absoluteSize
absoluteSpatialPosition absoluteTemporalPosition acceptTracking action aggregate and andSequence
annotate anonymize archive assignee assigneeOf assigner assignerOf attribute attributedParty
attributingParty compensate compensatedParty compensatingParty concurrentUse conflict
consentedParty consentingParty consequence constraint contractedParty contractingParty count
dataType dateTime delayPeriod delete deliveryChannel derive digitize display distribute duty
elapsedTime ensureExclusivity eq event execute extract fileFormat function give grantUse gt gteq
hasPart hasPolicy implies include includedIn index inform informedParty informingParty
inheritFrom install invalid isA isAllOf isAnyOf isNoneOf isPartOf language leftOperand lt lteq
media meteredTime modify move neq nextPolicy obligation obtainConsent operator or output partOf
payAmount percentage perm permission play policyUsage present print product profile prohibit
prohibition purpose read recipient refinement relation relativePosition relativeSize
relativeSpatialPosition relativeTemporalPosition remedy reproduce resolution reviewPolicy
rightOperand rightOperandReference sell source spatial spatialCoordinates status stream
systemDevice target textToSpeech timeInterval trackedParty trackingParty transfer transform
translate uninstall unit unitOfCount use version virtualLocation watermark xone
""".split())


DEFAULT_PREFIXES: Mapping[str, str] = MappingProxyType({
    "odrl": ODRL,
    "cx-policy": CX_POLICY,
    "edc": EDC,
    "dspace": DSPACE,
    "bpc-policy": BPC_POLICY,
})


def _odrl_profile() -> dict[str, Any]:
    return {"odrl": ODRL, **{term: f"odrl:{term}" for term in DSP_ODRL_TERMS}}


def _documents() -> dict[str, dict[str, Any]]:
    profile = {"@protected": True, **_odrl_profile()}
    return {
        DSP_ODRL_PROFILE: profile,
        CX_ODRL_CONTEXT: profile,
        # The DSP message context: its type-scoped contexts import the ODRL profile for the
        # negotiation messages (``@import`` + ``@propagate``), so a policy inside a message
        # sees the profile's terms. Modelled as the profile plus the message prefixes.
        DSP_CONTEXT: {**profile, "dspace": DSPACE, "dct": "http://purl.org/dc/terms/",
                      "dcat": "http://www.w3.org/ns/dcat#",
                      "xsd": "http://www.w3.org/2001/XMLSchema#"},
        CX_POLICY_CONTEXT: {
            "@protected": True, "cred": "https://www.w3.org/2018/credentials#",
            "xsd": "http://www.w3.org/2001/XMLSchema#", "cx-policy": CX_POLICY,
            **{term: {"@id": f"cx-policy:{term}"} for term in CX_2025_9_TERMS},
        },
        CX_LEGACY_CONTEXT: {
            "@protected": True, "cred": "https://www.w3.org/2018/credentials#",
            "xsd": "http://www.w3.org/2001/XMLSchema#", "cx-policy": CX_POLICY_LEGACY,
            **{term: f"cx-policy:{term}" for term in CX_LEGACY_TERMS},
        },
        ODRL_CONTEXT: {"odrl": ODRL, "uid": "@id", "type": "@type",
                       **{term: f"odrl:{term}" for term in ODRL_TERMS}},
        ODRL_CONTEXT_HTTPS: {"odrl": ODRL, "uid": "@id", "type": "@type",
                             **{term: f"odrl:{term}" for term in ODRL_TERMS}},
    }


@cache
def _bundled() -> Mapping[str, dict[str, Any]]:
    return MappingProxyType(_documents())


def known_context(url: str) -> Any:
    """The context definitions for ``url`` (an object or a list): ours first, then ``vocab``'s
    bundle; None when neither has it."""
    document = _bundled().get(url)
    if document is not None:
        return document
    from vocab.contexts_bundle import bundled_context  # deferred: reads the bundle index

    found = bundled_context(url)
    if isinstance(found, dict) and isinstance(found.get("@context"), dict | list):
        inner: Any = found["@context"]
        return inner
    return None


def policy_context_urls() -> frozenset[str]:
    """The context URLs this module defines itself (vocab's bundle comes on top)."""
    return frozenset(_bundled())


# --- the active context ----------------------------------------------------------------------

_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def _is_absolute(value: str) -> bool:
    """An IRI with a scheme (``https://…``, ``urn:…``, ``did:…``) or a blank node ``_:x``."""
    return value.startswith("_:") or bool(_ABSOLUTE.match(value))


@dataclass(frozen=True, slots=True)
class ActiveContext:
    """Term definitions, ``@vocab`` and protection, as a policy's contexts leave them.

    ``terms`` maps a term (also prefixes, which are terms too) to its IRI or keyword; ``None``
    means the term was explicitly undefined (``"term": null``).
    """

    terms: Mapping[str, str | None] = field(default_factory=dict)
    protected: frozenset[str] = frozenset()
    vocab: str | None = None

    # -- expansion --

    def expand(self, value: str) -> str | None:
        """The IRI (or keyword) a term in a vocabulary position stands for, or None.

        Vocabulary positions are keys and the values of ``@type``, ``action``, ``operator`` and
        ``leftOperand`` (``"@type": "@vocab"`` in the ODRL contexts): a term definition wins,
        then a compact IRI ``prefix:suffix``, then an absolute IRI, then ``@vocab``.
        """
        if value in self.terms:
            return self.terms[value]
        if value.startswith("@"):
            return value
        prefix, sep, suffix = value.partition(":")
        if sep and not suffix.startswith("//"):
            base = self.terms.get(prefix)
            if base is not None and prefix in self.terms:
                return base + suffix
        if sep and _is_absolute(value):
            return value
        if self.vocab is not None and not sep:
            return self.vocab + value
        return None

    def expand_id(self, value: str) -> str:
        """An identifier (``@id``, ``assignee``, ``target``): compact IRIs expand, anything
        else stays as written (relative references are kept, not resolved against a base)."""
        prefix, sep, suffix = value.partition(":")
        if sep and not suffix.startswith("//") and self.terms.get(prefix) is not None:
            return f"{self.terms[prefix]}{suffix}"
        return value

    # -- compaction --

    def compact(self, iri: str) -> str:
        """The shortest spelling of ``iri`` that expands back to it: a term, a compact IRI,
        else the IRI itself."""
        best: str | None = None
        for term, target in self.terms.items():
            shorter = best is None or len(term) < len(best)
            if target == iri and shorter and self.expand(term) == iri:
                best = term
        if best is not None:
            return best
        for term, target in self.terms.items():
            if target and iri.startswith(target) and len(iri) > len(target) and ":" not in term:
                candidate = f"{term}:{iri[len(target):]}"
                if self.expand(candidate) == iri and (best is None or len(candidate) < len(best)):
                    best = candidate
        return best or iri

    # -- processing --

    def extend(self, local: Any, path: str = "@context") -> ActiveContext:
        """This context with ``local`` (a URL, an inline object, a list of them) applied."""
        state = _State(dict(self.terms), set(self.protected), self.vocab)
        state.apply(local, path)
        return ActiveContext(MappingProxyType(state.terms), frozenset(state.protected),
                             state.vocab)

_UNRESOLVED = object()


@dataclass(slots=True)
class _State:
    """Context processing in progress: what ``ActiveContext.extend`` accumulates."""

    terms: dict[str, str | None]
    protected: set[str]
    vocab: str | None

    def apply(self, local: Any, path: str) -> None:
        items = local if isinstance(local, list) else [local]
        for index, item in enumerate(items):
            where = f"{path}[{index}]" if isinstance(local, list) else path
            if item is None:  # a null context resets everything (JSON-LD 1.1 §4.1)
                self.terms, self.protected, self.vocab = {}, set(), None
            elif isinstance(item, str):
                document = known_context(item)
                if document is None:
                    raise UnknownContext(where, f"context {item!r} is not bundled, and the "
                                         "engine never fetches one: its terms are unknown")
                self.apply(document, where)
            elif isinstance(item, dict):
                self.define(item, where)
            else:
                raise MalformedPolicy(where, "a context is a URL, an object or a list of them")

    def define(self, item: Mapping[str, Any], where: str) -> None:
        if "@vocab" in item:
            raw = item["@vocab"]
            if raw is not None and not isinstance(raw, str):
                raise MalformedPolicy(f"{where}.@vocab", "@vocab must be an IRI or null")
            self.vocab = raw
        # Definitions may use prefixes defined in the same object, in any order.
        staged: dict[str, str | None] = dict(self.terms)
        pending = {k: v for k, v in item.items() if not k.startswith("@")}
        progressed = True
        while pending and progressed:
            progressed = False
            for term, definition in list(pending.items()):
                iri = _definition_iri(term, definition, staged, f"{where}.{term}",
                                      waiting=pending.keys() - {term})
                if iri is not _UNRESOLVED:
                    staged[term] = iri  # type: ignore[assignment]
                    del pending[term]
                    progressed = True
        for term, definition in pending.items():  # vocab-relative definitions
            staged[term] = _fallback(definition, self.vocab)
        is_protected = item.get("@protected") is True
        for term in item:
            if term.startswith("@"):
                continue
            new = staged[term]
            if term in self.protected and self.terms.get(term) != new:
                raise MalformedPolicy(f"{where}.{term}", f"the protected term {term!r} may not "
                                      f"be redefined ({self.terms.get(term)} -> {new})")
            self.terms[term] = new
            if is_protected:
                self.protected.add(term)


def _definition_iri(term: str, definition: Any, staged: Mapping[str, str | None],
                    path: str, waiting: Set[str] = frozenset()) -> object:
    """The IRI a term definition gives, None for ``null``, ``_UNRESOLVED`` if it waits for a
    prefix defined later in the same object."""
    if definition is None:
        return None
    if isinstance(definition, dict):
        if "@reverse" in definition:
            raise MalformedPolicy(path, "reverse properties are not supported")
        if "@id" not in definition:
            return _UNRESOLVED  # {"@type": …} alone: keeps a prefix or vocab meaning
        definition = definition["@id"]
    if not isinstance(definition, str):
        raise MalformedPolicy(path, "a term definition is an IRI, null or an object")
    if definition.startswith("@"):
        return definition
    prefix, sep, suffix = definition.partition(":")
    if sep and prefix in waiting:
        return _UNRESOLVED  # its prefix is defined later in the same object
    if sep and not suffix.startswith("//") and prefix != term and staged.get(prefix):
        return f"{staged[prefix]}{suffix}"
    if sep and _is_absolute(definition):
        return definition
    return _UNRESOLVED


def _fallback(definition: Any, vocab: str | None) -> str | None:
    if isinstance(definition, dict):
        definition = definition.get("@id")
    if isinstance(definition, str):
        if _is_absolute(definition):
            return definition
        return vocab + definition if vocab else None
    return None


@cache
def base_context() -> ActiveContext:
    """The implicit context every policy starts from (see the module docstring)."""
    terms: dict[str, str | None] = dict(DEFAULT_PREFIXES)
    terms.update({term: ODRL + term for term in ODRL_TERMS})
    terms["uid"] = "@id"
    terms["type"] = "@type"
    return ActiveContext(MappingProxyType(terms), frozenset(), None)


def active_context(*contexts: Any) -> ActiveContext:
    """The base context extended with each of ``contexts`` in turn (None entries skipped).

    Results are cached by the contexts' JSON: a catalog reads many policies under the same few
    contexts, and building one costs more than parsing the policy.
    """
    try:
        key = json.dumps(contexts, sort_keys=True)
    except (TypeError, ValueError):
        return _build(contexts)
    return _cached(key)


@lru_cache(maxsize=512)
def _cached(key: str) -> ActiveContext:
    return _build(tuple(json.loads(key)))


def _build(contexts: tuple[Any, ...]) -> ActiveContext:
    active = base_context()
    for context in contexts:
        if context is not None:
            active = active.extend(context)
    return active


__all__ = [
    "CX_2025_9_TERMS",
    "CX_LEGACY_TERMS",
    "DEFAULT_PREFIXES",
    "DSP_ODRL_TERMS",
    "ODRL_TERMS",
    "ActiveContext",
    "active_context",
    "base_context",
    "known_context",
    "policy_context_urls",
]
