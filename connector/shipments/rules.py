"""Product or waste: the classification of each battery of a shipment declaration.

A pure function of the declaration, what the signature and status checks found
(``credentials.VerificationResult`` of the presentation, one result per embedded credential),
the officer's trust registry and the verification time. No I/O: ``verify.py`` does the
checking, this module applies the rules, so every rule is testable on plain data.

The rules follow the Basel e-waste technical guidelines (UNEP/CHW.12/5/Add.1/Rev.1; used
equipment keeps its product status only with (1) a valid contract, (2) a functionality test
record for every item, (3) the holder's declaration and (4) protective packaging) and the
Battery Regulation's Annex XIV (without that evidence the battery is deemed waste). Our reading:

========================  ==========================================================
declared purpose          product when …
========================  ==========================================================
``Repair``                contract, declaration, packaging, a test *record* (the item
                          may be defective: a failed result is allowed, Annex XIV(2)),
                          facility authorised for repair → ``product-repair`` (repair /
                          reuse)
``Repurposing``           the same, and the test passed with a state of health of at
                          least ``min_state_of_health_pct`` → ``product-repurposing``
``Recycling``             never: ``waste`` (rule ``declared-recycling``); what the
                          shipment still lacks is listed, because a waste shipment to
                          an unauthorised facility is illegal too
========================  ==========================================================

Otherwise the battery is ``waste`` and ``rule`` names the first condition that failed, in the
order declaration → contract → facility → testing → packaging; ``missing`` lists every finding
for the item (codes below), each naming the credential or field at fault.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from credentials import VerificationResult
from credentials.errors import CredentialsError, ProblemType
from credentials.model import issuer_id, types_of
from credentials.passport.types import (
    ConsignmentItem,
    ShipmentDeclarationSubject,
    parse_shipment_credential,
)
from credentials.timestamps import format_datetime, parse_datetime
from credentials.trust import TrustRegistry

Classification = Literal["product-repair", "product-repurposing", "waste"]
LABELS: dict[str, str] = {"product-repair": "product (repair / reuse)",
                          "product-repurposing": "product (repurposing)",
                          "waste": "waste (recycling)"}
#: Basel condition each finding belongs to; also the order in which the deciding rule is picked.
CONDITIONS = ("declaration", "contract", "facility", "testing", "packaging")
RULES = {
    "declaration": "basel-declaration",
    "contract": "basel-contract",
    "facility": "facility-authorisation",
    "testing": "basel-testing",
    "packaging": "basel-packaging",
}
DECLARATION = "ShipmentDeclarationCredential"
TEST = "FunctionalityTestCredential"
ATTESTATION = "ContractAgreementCredential"
AUTHORISATION = "TreatmentFacilityAuthorisationCredential"
_REVOKED = {ProblemType.REVOKED, ProblemType.SUSPENDED}
_WINDOW = {ProblemType.EXPIRED, ProblemType.NOT_YET_VALID}


@dataclass(frozen=True)
class ShipmentRules:
    """The thresholds an officer's verifier applies (documented defaults)."""

    #: A functionality test older than this does not describe the battery shipped.
    max_test_age: timedelta = timedelta(days=180)
    #: Below this state of health a battery is not fit for a second life (the synthetic
    #: ranges: "recycle below ~65 %").
    min_state_of_health_pct: Decimal = Decimal("65")
    #: Packing instructions accepted as protection against damage (ADR / IATA).
    packing_instructions: frozenset[str] = frozenset({"P903", "P908", "P909", "P911"})


DEFAULT_RULES = ShipmentRules()


@dataclass(frozen=True)
class Finding:
    """One missing or failing piece: ``code`` is stable, ``message`` says which and why."""

    condition: str
    code: str
    message: str
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"condition": self.condition, "code": self.code,
                               "message": self.message}
        if self.path:
            out["path"] = self.path
        return out


@dataclass(frozen=True)
class ItemVerdict:
    battery: str
    declared_purpose: str | None
    classification: Classification
    rule: str
    reason: str
    missing: list[Finding]

    @property
    def label(self) -> str:
        return LABELS[self.classification]

    def to_json(self) -> dict[str, Any]:
        return {"battery": self.battery, "declaredPurpose": self.declared_purpose,
                "classification": self.classification, "label": self.label,
                "rule": self.rule, "reason": self.reason,
                "missing": [f.to_json() for f in self.missing]}


@dataclass(frozen=True)
class CredentialView:
    """One embedded credential as the officer sees it: who, what, verified, trusted."""

    index: int
    id: str | None
    types: list[str]
    issuer: str | None
    verified: bool
    trusted: bool | None
    problems: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "types": self.types, "issuer": self.issuer,
                "verified": self.verified, "trusted": self.trusted, "problems": self.problems}


@dataclass
class ShipmentVerdict:
    """The whole answer: declaration-level findings, one verdict per battery."""

    declaration: str | None
    consignor: str | None
    consignee: str | None
    checked_at: datetime
    signature_valid: bool
    findings: list[Finding] = field(default_factory=list)
    items: list[ItemVerdict] = field(default_factory=list)
    credentials: list[CredentialView] = field(default_factory=list)
    sources: dict[str, Any] = field(default_factory=dict)

    @property
    def all_products(self) -> bool:
        return bool(self.items) and all(i.classification != "waste" for i in self.items)

    def to_json(self) -> dict[str, Any]:
        return {"declaration": self.declaration, "consignor": self.consignor,
                "consignee": self.consignee, "checkedAt": format_datetime(self.checked_at),
                "signatureValid": self.signature_valid,
                "findings": [f.to_json() for f in self.findings],
                "items": [i.to_json() for i in self.items],
                "credentials": [c.to_json() for c in self.credentials],
                "sources": self.sources}


# --- reading the presentation -------------------------------------------------------------------


@dataclass
class _Embedded:
    index: int
    document: dict[str, Any]
    types: list[str]
    issuer: str | None
    result: VerificationResult | None

    @property
    def id(self) -> str | None:
        value = self.document.get("id")
        return value if isinstance(value, str) else None

    @property
    def subject(self) -> dict[str, Any]:
        value = self.document.get("credentialSubject")
        return value if isinstance(value, dict) else {}

    def failures(self) -> list[Any]:
        return list(self.result.problems) if self.result is not None else []


def _embedded(declaration: dict[str, Any], checks: VerificationResult | None) -> list[_Embedded]:
    raw = declaration.get("verifiableCredential", [])
    items = raw if isinstance(raw, list) else [raw]
    results = checks.credentials if checks is not None else []
    out: list[_Embedded] = []
    for index, item in enumerate(items):
        result = results[index] if index < len(results) else None
        document = result.document if result is not None and result.document else item
        if not isinstance(document, dict):
            continue
        try:
            types = types_of(document)
        except CredentialsError:
            types = []
        try:
            issuer: str | None = issuer_id(document)
        except CredentialsError:
            issuer = None
        out.append(_Embedded(index, document, types, issuer, result))
    return out


def _problem_text(problems: Iterable[Any]) -> str:
    return "; ".join(f"{p.type}: {p.message}" for p in problems)


def _credential_finding(condition: str, what: str, credential: _Embedded,
                        ) -> Finding | None:
    """The finding for a credential that did not verify, most telling problem first."""
    problems = credential.failures()
    if credential.result is None:
        return Finding(condition, f"{condition}-unchecked",
                       f"{what} {credential.id or ''} was not checked",
                       f"verifiableCredential[{credential.index}]")
    if not problems:
        return None
    kinds = {p.type for p in problems}
    if kinds & _REVOKED:
        code, words = "revoked", "is revoked or suspended by its issuer"
    elif kinds & _WINDOW:
        code, words = "expired", "is outside its validity period"
    elif ProblemType.STATUS_UNAVAILABLE in kinds:
        code, words = "status-unavailable", "has a status that could not be established"
    else:
        code, words = "signature", "does not verify"
    return Finding(condition, f"{condition}-{code}",
                   f"{what} {credential.id or ''} {words} ({_problem_text(problems)})",
                   f"verifiableCredential[{credential.index}]")


def _instant(value: Any) -> datetime | None:
    try:
        return parse_datetime(value, path="testedAt") if isinstance(value, str) else None
    except CredentialsError:
        return None


# --- the rules ------------------------------------------------------------------------------------


def classify(declaration: Any, checks: VerificationResult | None, trust: TrustRegistry,
             now: datetime, rules: ShipmentRules = DEFAULT_RULES) -> ShipmentVerdict:
    """Classify every battery of ``declaration`` (see the module docstring)."""
    if not isinstance(declaration, dict):
        return ShipmentVerdict(None, None, None, now, False, [Finding(
            "declaration", "declaration-malformed", "a shipment declaration is a JSON object")])
    embedded = _embedded(declaration, checks)
    holder = declaration.get("holder")
    holder = holder.get("id") if isinstance(holder, dict) else holder
    holder = holder if isinstance(holder, str) else None
    verdict = ShipmentVerdict(
        declaration.get("id") if isinstance(declaration.get("id"), str) else None, holder,
        None, now, bool(checks is not None and not checks.problems))
    verdict.credentials = [_view(c, trust, now) for c in embedded]
    shared: list[Finding] = []
    if checks is None or checks.problems:
        detail = _problem_text(checks.problems) if checks is not None else "not checked"
        shared.append(Finding("declaration", "presentation-signature",
                              "the shipper's signature over the declaration does not verify: "
                              "it was altered (a credential or item added or removed) or "
                              f"signed by another key ({detail})", "proof"))
    declared = [c for c in embedded if DECLARATION in c.types]
    if not declared:
        shared.append(Finding("declaration", "declaration-missing",
                              "the presentation holds no ShipmentDeclarationCredential",
                              "verifiableCredential"))
        verdict.findings = shared
        return verdict
    statement = declared[0]
    try:
        parsed = parse_shipment_credential(statement.document)
        assert isinstance(parsed, ShipmentDeclarationSubject)
        subject: ShipmentDeclarationSubject = parsed
    except CredentialsError as exc:
        shared.append(Finding("declaration", "declaration-malformed",
                              f"the ShipmentDeclarationCredential is malformed: {exc}",
                              f"verifiableCredential[{statement.index}]"))
        verdict.findings = shared
        return verdict
    verdict.consignor, verdict.consignee = subject.consignor, subject.consignee
    if len(declared) > 1:
        shared.append(Finding("declaration", "declaration-ambiguous",
                              "the presentation holds more than one ShipmentDeclarationCredential",
                              "verifiableCredential"))
    failed = _credential_finding("declaration", "the ShipmentDeclarationCredential", statement)
    if failed is not None:
        shared.append(failed)
    if statement.issuer != subject.consignor or holder != subject.consignor:
        shared.append(Finding("declaration", "declaration-not-by-shipper",
                              f"the declaration is issued by {statement.issuer} and presented "
                              f"by {holder}; both must be the consignor {subject.consignor}",
                              "holder"))
    shared.extend(_contract(subject, embedded, now))
    authorisations = [c for c in embedded if AUTHORISATION in c.types]
    verdict.findings = shared
    for item in subject.consignment_item:
        verdict.items.append(_item(item, subject, shared, embedded, authorisations, trust, now,
                                   rules))
    return verdict


def _view(credential: _Embedded, trust: TrustRegistry, now: datetime) -> CredentialView:
    verified = credential.result is not None and credential.result.verified
    specific = [t for t in credential.types if t not in ("VerifiableCredential",)]
    trusted = (trust.is_trusted(specific, credential.issuer, now=now).trusted
               if any(t in (TEST, AUTHORISATION) for t in specific) else None)
    problems = ([f"{p.type}: {p.message}" for p in credential.result.problems]
                if credential.result is not None else ["not checked"])
    return CredentialView(credential.index, credential.id, specific, credential.issuer,
                          verified, trusted, problems)


def _contract(subject: ShipmentDeclarationSubject, embedded: list[_Embedded], now: datetime,
              ) -> list[Finding]:
    """Condition 1: both parties attest the agreement named, and it binds shipper and
    receiving facility, now."""
    found: list[Finding] = []
    agreement = subject.contract_agreement
    attestations = [c for c in embedded if ATTESTATION in c.types
                    and c.subject.get("id") == agreement]
    others = [c for c in embedded if ATTESTATION in c.types and c not in attestations]
    for other in others:
        found.append(Finding("contract", "contract-other-agreement",
                             f"an attestation names agreement {other.subject.get('id')}, not "
                             f"{agreement}", f"verifiableCredential[{other.index}]"))
    if not attestations:
        return [*found, Finding("contract", "contract-missing",
                                f"no ContractAgreementCredential attests agreement {agreement}",
                                "verifiableCredential")]
    first = attestations[0].subject
    provider, consumer = first.get("agreementProvider"), first.get("agreementConsumer")
    parties = {p for p in (provider, consumer) if isinstance(p, str)}
    if {subject.consignor, subject.consignee} != parties:
        found.append(Finding("contract", "consignee-mismatch",
                             f"agreement {agreement} is between {provider} and {consumer}; the "
                             f"shipment is from {subject.consignor} to {subject.consignee}",
                             "credentialSubject.consignee"))
    by_party: dict[str, _Embedded] = {}
    for attestation in attestations:
        issuer = attestation.issuer or ""
        if issuer not in parties:
            found.append(Finding("contract", "contract-not-a-party",
                                 f"{issuer} attests agreement {agreement} but is not a party "
                                 "to it", f"verifiableCredential[{attestation.index}]"))
            continue
        by_party.setdefault(issuer, attestation)
    for party in sorted(parties):
        if party not in by_party:
            found.append(Finding("contract", "contract-attestation-missing",
                                 f"agreement {agreement} is attested by one party only: "
                                 f"{party} has not signed it", "verifiableCredential"))
    for party, attestation in sorted(by_party.items()):
        failed = _credential_finding("contract", f"the attestation of {party}", attestation)
        if failed is not None:
            if failed.code == "contract-expired":
                failed = Finding("contract", "contract-expired",
                                 f"agreement {agreement} is no longer in force (the attestation "
                                 f"of {party} ended {attestation.document.get('validUntil')})",
                                 failed.path)
            found.append(failed)
        mine = attestation.subject
        for term in ("agreementProvider", "agreementConsumer", "agreementTarget",
                     "policyDigest"):
            if mine.get(term) != first.get(term):
                found.append(Finding("contract", "contract-digest-mismatch",
                                     f"the parties attest different agreements: {term} is "
                                     f"{first.get(term)!r} for one and {mine.get(term)!r} for "
                                     f"{party}", f"verifiableCredential[{attestation.index}]"))
                break
    if first.get("policyDigest") != subject.policy_digest:
        found.append(Finding("contract", "contract-digest-mismatch",
                             f"the declaration names policy digest {subject.policy_digest}, the "
                             f"parties attest {first.get('policyDigest')}",
                             "credentialSubject.policyDigest"))
    return found


def _facility(subject: ShipmentDeclarationSubject, purpose: str,
              authorisations: list[_Embedded], trust: TrustRegistry, now: datetime,
              ) -> list[Finding]:
    """The receiving facility is authorised for this purpose by an authority the officer
    trusts, and the permit is valid and not revoked."""
    mine = [a for a in authorisations if a.subject.get("id") == subject.consignee]
    if not mine:
        return [Finding("facility", "facility-authorisation-missing",
                        f"no TreatmentFacilityAuthorisationCredential for the consignee "
                        f"{subject.consignee}", "verifiableCredential")]
    reasons: list[Finding] = []
    for authorisation in mine:
        path = f"verifiableCredential[{authorisation.index}]"
        failed = _credential_finding("facility", "the facility authorisation", authorisation)
        decision = trust.is_trusted([AUTHORISATION], authorisation.issuer, now=now)
        operations = authorisation.subject.get("authorisedOperation")
        operations = [operations] if isinstance(operations, str) else operations or []
        country = authorisation.subject.get("facilityCountry")
        if failed is not None:
            reasons.append(failed)
        elif not decision.trusted:
            reasons.append(Finding("facility", "facility-untrusted-authority",
                                   f"the facility authorisation is issued by "
                                   f"{authorisation.issuer}, not a competent authority this "
                                   f"verifier trusts ({decision.reason})", path))
        elif purpose not in operations:
            reasons.append(Finding("facility", "facility-not-authorised",
                                   f"{subject.consignee} is authorised for "
                                   f"{', '.join(map(str, operations)) or 'nothing'}, not "
                                   f"{purpose}", f"{path}.credentialSubject.authorisedOperation"))
        elif country != subject.destination_country:
            reasons.append(Finding("facility", "facility-country-mismatch",
                                   f"the facility's permit is for {country}, the shipment goes "
                                   f"to {subject.destination_country}", path))
        else:
            return []
    return reasons


def _testing(item: ConsignmentItem, embedded: list[_Embedded], trust: TrustRegistry,
             now: datetime, rules: ShipmentRules) -> list[Finding]:
    """Condition 2: a functionality test record of this battery from a trusted tester, recent;
    for repurposing passed with enough state of health."""
    tests = [c for c in embedded if TEST in c.types and c.subject.get("id") == item.battery_did]
    named = [c for c in tests if item.functionality_test and c.id == item.functionality_test]
    test = (named or tests or [None])[0]
    if test is None:
        return [Finding("testing", "functionality-test-missing",
                        f"no FunctionalityTestCredential for {item.battery_did}",
                        "verifiableCredential")]
    path = f"verifiableCredential[{test.index}]"
    failed = _credential_finding("testing", "the functionality test", test)
    if failed is not None:
        return [failed]
    decision = trust.is_trusted([TEST], test.issuer, now=now)
    if not decision.trusted:
        return [Finding("testing", "functionality-test-untrusted",
                        f"the functionality test is issued by {test.issuer}, which this "
                        f"verifier does not trust for {TEST} ({decision.reason})", path)]
    found: list[Finding] = []
    tested = _instant(test.subject.get("testedAt"))
    if tested is None or now - tested > rules.max_test_age:
        found.append(Finding("testing", "functionality-test-too-old",
                             f"the functionality test of {item.battery_did} dates from "
                             f"{test.subject.get('testedAt')}; it must be less than "
                             f"{rules.max_test_age.days} days old", f"{path}.credentialSubject"
                             ".testedAt"))
    if item.shipment_purpose == "Repurposing":
        if test.subject.get("testResult") != "pass":
            found.append(Finding("testing", "functionality-test-failed",
                                 f"the functionality test of {item.battery_did} did not pass "
                                 f"(result {test.subject.get('testResult')!r})",
                                 f"{path}.credentialSubject.testResult"))
        try:
            soh = Decimal(str(test.subject.get("stateOfHealthPct")))
        except InvalidOperation:
            soh = Decimal(-1)
        if soh < rules.min_state_of_health_pct:
            found.append(Finding("testing", "state-of-health-too-low",
                                 f"state of health {test.subject.get('stateOfHealthPct')} % is "
                                 f"below {rules.min_state_of_health_pct} %, not fit for "
                                 "repurposing", f"{path}.credentialSubject.stateOfHealthPct"))
    return found


def _packaging(item: ConsignmentItem, rules: ShipmentRules) -> list[Finding]:
    packaging = item.packaging
    if not packaging.protected_against_damage or (
            packaging.packing_instruction not in rules.packing_instructions):
        return [Finding("packaging", "packaging-insufficient",
                        f"{item.battery_did}: packing instruction "
                        f"{packaging.packing_instruction}, protected against damage: "
                        f"{packaging.protected_against_damage}; needs one of "
                        f"{', '.join(sorted(rules.packing_instructions))} and protection",
                        "credentialSubject.consignmentItem.packaging")]
    return []


def _item(item: ConsignmentItem, subject: ShipmentDeclarationSubject, shared: list[Finding],
          embedded: list[_Embedded], authorisations: list[_Embedded], trust: TrustRegistry,
          now: datetime, rules: ShipmentRules) -> ItemVerdict:
    purpose = item.shipment_purpose
    missing = [*shared, *_facility(subject, purpose, authorisations, trust, now)]
    if purpose != "Recycling":
        missing.extend(_testing(item, embedded, trust, now, rules))
    missing.extend(_packaging(item, rules))
    missing.sort(key=lambda f: CONDITIONS.index(f.condition))
    if purpose == "Recycling":
        return ItemVerdict(item.battery_did, purpose, "waste", "declared-recycling",
                           "declared for recycling: a battery shipped for recycling is waste "
                           "(Basel e-waste guidelines; Battery Regulation Annex XIV)", missing)
    if missing:
        first = missing[0]
        return ItemVerdict(item.battery_did, purpose, "waste", RULES[first.condition],
                           f"declared for {purpose.lower()}, but the {first.condition} "
                           f"condition is not met ({first.code}): without that evidence a "
                           "used battery is deemed waste (Annex XIV(5))", missing)
    if purpose == "Repair":
        return ItemVerdict(item.battery_did, purpose, "product-repair", "product-repair",
                           "contract, evaluation record, declaration and packaging present; "
                           "the facility is authorised for repair", [])
    return ItemVerdict(item.battery_did, purpose, "product-repurposing", "product-repurposing",
                       "contract, passed functionality test, declaration and packaging "
                       "present; the facility is authorised for repurposing", [])


__all__ = ["DEFAULT_RULES", "LABELS", "RULES", "CredentialView", "Finding", "ItemVerdict",
           "ShipmentRules", "ShipmentVerdict", "classify"]
