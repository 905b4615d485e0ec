"""The value-chain demo's shipment step: the fleet operator declares the battery it ships to
the recycler, and a customs officer checks the declaration.

Called once from ``ValueChain.first_life`` (``connector.valuechain.story``) after the
shipment is recorded in the passport and before custody moves. Everything goes through the
nodes' APIs: the fleet operator offers the battery hand-over as an asset, the recycler
negotiates the agreement, the story's certification body (acting as the competent authority)
permits the recycler's facility, the fleet operator tests the battery and declares; the mine &
refiner's node, the one participant with no part in the shipment, stands in for the customs
office and verifies. The declaration is written beside the nodes (``shipment-declaration.json``)
with the officer's offline cache (``shipment-cache/``), so a newcomer can check it again after
the demo with ``bpc shipment verify shipment-declaration.json --offline-cache shipment-cache``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from connector import samples
from connector.shipments.verify import OfflineCache
from credentials import JCS
from credentials.issuer import issue_credential

if TYPE_CHECKING:
    from connector.valuechain.story import ValueChain

DECLARATION_FILE = "shipment-declaration.json"
CACHE_DIR = "shipment-cache"
AUTHORISATION = "TreatmentFacilityAuthorisationCredential"
TEST = "FunctionalityTestCredential"


async def declare_shipment(chain: ValueChain) -> dict[str, str]:
    """Run the step; the officer's classification per battery (battery DID → class)."""
    from connector.valuechain.story import StepFailed

    fleet, recycler, officer = chain.api["fleet"], chain.api["recycler"], chain.api["mine"]
    battery = chain.outcome.battery
    asset = await fleet.must("POST", "/management/assets", {
        "batteryDid": battery, "accessLevel": "performance-health",
        "title": "Battery hand-over for treatment", "allowedParticipants": [recycler.did],
        "dataSource": {"kind": "inline", "data": {"batteryDid": battery}}}, status=201,
        step="fleet: offer the battery hand-over")
    started = await recycler.must("POST", "/management/negotiations", {
        "counterPartyAddress": fleet.node.url, "offerId": asset["defaultOffer"]["id"]},
        status=201, step="recycler: agree the hand-over with the fleet operator")
    deadline = time.monotonic() + 20
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _, view = await recycler.call("GET", f"/management/negotiations/{started['id']}")
        if view.get("state") in ("FINALIZED", "TERMINATED"):
            break
        await asyncio.sleep(0.05)
    if view.get("state") != "FINALIZED":
        raise StepFailed(f"the hand-over agreement was not reached: {view}")
    permit = issue_credential(samples.treatment_facility_authorisation(
        recycler.did, chain.certifier.controller, rng=chain.rng), chain.certifier, suite=JCS)
    await recycler.must("POST", "/management/wallet/credentials", permit, status=201,
                        step="recycler: keep its treatment permit")
    test = await fleet.issue(samples.functionality_test(battery, fleet.did, rng=chain.rng),
                             "fleet: functionality test before shipping")
    declaration = await fleet.must("POST", "/management/shipments", {
        "batteries": [battery], "purpose": "recycling",
        "agreementId": str(view["agreementId"]), "consignee": recycler.did,
        "destinationCountry": "DE", "functionalityTests": [test]}, status=201,
        step="fleet: declare the shipment")
    path = fleet.node.directory.parent / DECLARATION_FILE
    path.write_text(json.dumps(declaration, indent=2) + "\n", "utf-8")
    for kind, issuer in ((AUTHORISATION, chain.certifier.controller), (TEST, fleet.did)):
        await officer.must("POST", "/management/trust/issuers", {
            "credentialType": kind, "issuer": issuer}, status=(200, 201),
            step=f"customs: trust {kind} issuers")
    verdict = await officer.must("POST", "/shipments/verify", declaration, status=200,
                                 step="customs: verify the declaration")
    bundle = await officer.must("POST", "/shipments/cache", {"declarations": [declaration]},
                                status=200, step="customs: fill an offline cache")
    cache = path.parent / CACHE_DIR
    OfflineCache(cache).store(bundle, node=officer.node.url)
    classes = {item["battery"]: item["classification"] for item in verdict["items"]}
    labels = ", ".join(f"{item['label']} ({item['rule']})" for item in verdict["items"])
    chain.say(f"shipment declaration signed by the fleet operator (both parties attest the "
              f"agreement, the recycler's permit, a functionality test): customs says {labels}; "
              f"saved as {path}; check it offline, after the demo, with `bpc shipment verify "
              f"{path} --offline-cache {cache}`")
    return classes


__all__ = ["CACHE_DIR", "DECLARATION_FILE", "declare_shipment"]
