"""Building a shipment declaration: the shipper's signed presentation of the evidence.

A declaration is a VCDM 2.0 verifiable presentation (type ``ShipmentDeclaration``) whose holder
is the shipper (consignor) and whose ``verifiableCredential`` list holds:

1. the shipper's ``ShipmentDeclarationCredential`` (Basel condition 3, "declaration by the
   holder arranging transport"): consignor, consignee, destination country, the agreement id
   and its policy digest, and one ``ConsignmentItem`` per battery — its passport summary
   (battery DID, passport head digest, chemistry, mass), the declared purpose, the id of its
   functionality test credential and the packaging declaration (Basel condition 4);
2. one ``FunctionalityTestCredential`` per battery (condition 2), issued by the tester;
3. the two ``ContractAgreementCredential``s, one per party of the agreement (condition 1);
4. the receiving facility's ``TreatmentFacilityAuthorisationCredential``(s).

The presentation is signed by the shipper (eddsa-jcs-2022, proof purpose authentication) with
``challenge`` = the declaration id and ``domain`` = the consignee's DID: not an interactive
challenge, but it binds the signature to this one consignment, and the verifier reads both
from the document it checks. Everything here is pure: the node's route gathers the pieces.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from credentials import JCS, Ed25519Key
from credentials.holder import create_presentation, sign_presentation
from credentials.issuer import issue_credential
from credentials.passport.types import (
    ConsignmentItem,
    PackagingDeclaration,
    ShipmentDeclarationSubject,
    ShipmentPurpose,
    build_credential,
)
from vocab import BATTERY_CONTEXT_V1, CREDENTIALS_V2, SHIPMENT_CONTEXT_V1

PRESENTATION_TYPE = "ShipmentDeclaration"
DECLARATION_CONTEXTS = [CREDENTIALS_V2, BATTERY_CONTEXT_V1, SHIPMENT_CONTEXT_V1]
HOLDER_DECLARATION = (
    "I, the holder arranging the transport, declare that the batteries listed are shipped for "
    "the purpose stated per battery under the contract named, were tested as recorded and are "
    "packed against damage in transport, loading and unloading.")
#: ADR/IATA: P903 for intact lithium batteries; P908 damaged or defective; P911 critical.
DEFAULT_PACKAGING = PackagingDeclaration(un_number="UN3480", packing_instruction="P903",
                                         protected_against_damage=True)
PURPOSES: dict[str, ShipmentPurpose] = {"repair": "Repair", "repurposing": "Repurposing",
                                        "recycling": "Recycling"}


@dataclass(frozen=True)
class BatteryShipment:
    """One battery of the consignment and the evidence for it."""

    battery: str
    purpose: ShipmentPurpose
    functionality_test: dict[str, Any] | None = None
    passport_head: str | None = None
    chemistry: str | None = None
    mass_kg: Decimal | None = None
    packaging: PackagingDeclaration = field(default_factory=lambda: DEFAULT_PACKAGING)


@dataclass(frozen=True)
class Consignment:
    """What the shipper declares: who ships to whom, under which agreement, what."""

    consignor: str
    consignee: str
    destination_country: str
    agreement_id: str
    policy_digest: str
    batteries: list[BatteryShipment]
    attestations: list[dict[str, Any]] = field(default_factory=list)
    facility_authorisations: list[dict[str, Any]] = field(default_factory=list)
    declaration_id: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")


def declaration_credential(consignment: Consignment, now: datetime) -> dict[str, Any]:
    """The unsigned ``ShipmentDeclarationCredential`` of the consignor."""
    items = [ConsignmentItem(
        battery_did=b.battery, passport_head=b.passport_head, battery_chemistry=b.chemistry,
        battery_mass_kg=b.mass_kg, shipment_purpose=b.purpose,
        functionality_test=(b.functionality_test or {}).get("id"), packaging=b.packaging)
        for b in consignment.batteries]
    subject = ShipmentDeclarationSubject(
        id=consignment.declaration_id, consignor=consignment.consignor,
        consignee=consignment.consignee, destination_country=consignment.destination_country,
        contract_agreement=consignment.agreement_id, policy_digest=consignment.policy_digest,
        holder_declaration=HOLDER_DECLARATION, consignment_item=items)
    return build_credential(subject, issuer=consignment.consignor, valid_from=now)


def build_declaration(consignment: Consignment, key: Ed25519Key, now: datetime,
                      ) -> dict[str, Any]:
    """The signed declaration (see the module docstring); ``key`` is the consignor's."""
    declared = issue_credential(declaration_credential(consignment, now), key, suite=JCS,
                                now=now)
    evidence = [b.functionality_test for b in consignment.batteries if b.functionality_test]
    presentation = create_presentation(
        [declared, *evidence, *consignment.attestations,
         *consignment.facility_authorisations], key.controller,
        presentation_id=consignment.declaration_id)
    presentation["@context"] = list(DECLARATION_CONTEXTS)
    presentation["type"] = ["VerifiablePresentation", PRESENTATION_TYPE]
    return sign_presentation(presentation, key, challenge=consignment.declaration_id,
                             domain=consignment.consignee, suite=JCS, now=now)


__all__ = ["DECLARATION_CONTEXTS", "DEFAULT_PACKAGING", "HOLDER_DECLARATION",
           "PRESENTATION_TYPE", "PURPOSES", "BatteryShipment", "Consignment",
           "build_declaration", "declaration_credential"]
