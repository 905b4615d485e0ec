"""HTTP routes of shipment declarations.

==========================================  =========  ==========================================
route                                       who        what
==========================================  =========  ==========================================
``POST /management/shipments``              operator   build and sign a declaration (201, the VP)
``GET /dsp-ext/agreements/{id}/attestation`` counterparty (signed request) its attestation
``GET /shipments/verify``                   anyone     the officer's upload page (HTML)
``POST /shipments/verify``                  anyone     JSON body → verdict JSON; form → HTML page
``POST /shipments/cache``                   anyone     what an offline verifier needs (bundle)
==========================================  =========  ==========================================

The verify and cache endpoints are open (officers are not operators of the node), take at most
``MAX_DECLARATION_BYTES`` and answer bad input with problem JSON (400 not JSON, 413 too large);
a declaration that is forged or incomplete is not bad input: it gets a verdict naming what is
missing. Nothing they do changes the node's store.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from connector.management.auth import require_operator
from connector.ops.api_docs import Answer, api_operation
from connector.problems import (
    ProblemDetails,
    ProblemError,
    body_too_large,
    malformed_json,
    parse_body,
    read_json_object,
)
from connector.shipments.attestation import (
    ATTESTATION_ROUTE,
    ATTESTATIONS,
    AttestationError,
    attest,
    fetch_counterparty_attestation,
    get_attestation,
    policy_digest,
)
from connector.shipments.declaration import (
    DEFAULT_PACKAGING,
    PURPOSES,
    BatteryShipment,
    Consignment,
    build_declaration,
)
from connector.shipments.page import render_page
from connector.shipments.verify import (
    RecordingFetcher,
    RecordingResolver,
    check_signatures,
)
from credentials import Verifier
from credentials.errors import CredentialsError
from credentials.passport.types import (
    FunctionalityTest,
    PackagingDeclaration,
    parse_shipment_credential,
)
from credentials.status_list import StatusChecker
from credentials.timestamps import format_datetime

MAX_DECLARATION_BYTES = 2 * 1024 * 1024
MAX_BATTERIES = 500
HTML = "text/html"


def _now(app: web.Application) -> datetime:
    from connector.dsp.negotiation_service import service_of

    return service_of(app).settings.clock()


# --- building ---------------------------------------------------------------------------------


class ShipmentRequest(BaseModel):
    """``POST /management/shipments``: what the shipper declares."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    batteries: list[str] = Field(min_length=1, max_length=MAX_BATTERIES)
    purpose: Literal["repair", "repurposing", "recycling"]
    #: Per battery, when batteries of one consignment go for different purposes.
    purposes: dict[str, Literal["repair", "repurposing", "recycling"]] = Field(
        default_factory=dict)
    agreement_id: str = Field(min_length=1)
    consignee: str = Field(min_length=1)
    destination_country: str = Field(min_length=2, max_length=2)
    counterparty_address: str | None = None
    functionality_tests: list[dict[str, Any]] = Field(default_factory=list)
    packaging: dict[str, Any] | None = None


def _unprocessable(slug: str, title: str, detail: str) -> ProblemError:
    return ProblemError(ProblemDetails(422, slug, title, detail))


async def _summary(app: web.Application, battery: str) -> tuple[str | None, str | None,
                                                                   Decimal | None]:
    """Passport head digest, chemistry and mass of a battery in this node's store."""
    from connector.app import STORE

    async with app[STORE].read() as reader:
        head = await reader.passport_head(battery)
        first = await reader.passport(battery, limit=1)
    if head is None:
        raise _unprocessable("unknown-battery", "The node holds no passport for that battery",
                             f"no passport of {battery} in this node's store")
    document = first[0].credential if first else None
    subject = document.get("credentialSubject", {}) if isinstance(document, dict) else {}
    chemistry = subject.get("batteryChemistry")
    try:
        mass = Decimal(str(subject["batteryMassKg"])) if "batteryMassKg" in subject else None
    except InvalidOperation:
        mass = None
    return head.digest, chemistry if isinstance(chemistry, str) else None, mass


def _tests_by_battery(tests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The newest functionality test given for each battery (422 for one that is not one)."""
    newest: dict[str, dict[str, Any]] = {}
    for position, test in enumerate(tests):
        try:
            subject = parse_shipment_credential(test)
        except CredentialsError as exc:
            raise _unprocessable("invalid-functionality-test",
                                 "A functionality test cannot be read",
                                 f"functionalityTests[{position}]: {exc}") from None
        if not isinstance(subject, FunctionalityTest) or "proof" not in test:
            raise _unprocessable("invalid-functionality-test",
                                 "A functionality test cannot be read",
                                 f"functionalityTests[{position}] is not a signed "
                                 "FunctionalityTestCredential")
        held = newest.get(subject.id)
        tested = test["credentialSubject"]["testedAt"]
        if held is None or held["credentialSubject"]["testedAt"] < tested:
            newest[subject.id] = test
    return newest


class DeclarationDocument(BaseModel):
    """A shipment declaration: the shipper's signed verifiable presentation."""

    model_config = ConfigDict(extra="allow", title="ShipmentDeclaration")


@api_operation(summary="Build and sign a shipment declaration", tag="shipments",
               body=ShipmentRequest,
               answers=(Answer(201, DeclarationDocument, "The signed declaration"),),
               problems=(422, 502))
@require_operator
async def post_shipment(request: web.Request) -> web.Response:
    from connector.app import IDENTITY, STORE

    body = parse_body(ShipmentRequest, await read_json_object(request))
    app = request.app
    key = request.config_dict[IDENTITY].signing_key
    now = _now(app)
    async with app[STORE].read() as reader:
        agreement = await reader.get_agreement(body.agreement_id)
    if agreement is None or key.controller not in (agreement.provider_did,
                                                   agreement.consumer_did):
        raise _unprocessable("unknown-agreement", "No such agreement of this node",
                             f"this node is party to no agreement {body.agreement_id}")
    other = (agreement.consumer_did if agreement.provider_did == key.controller
             else agreement.provider_did)
    if body.consignee != other:
        raise _unprocessable("consignee-not-party", "The consignee is not the counterparty",
                             f"agreement {agreement.id} is with {other}, not {body.consignee}")
    try:
        packaging = (PackagingDeclaration.model_validate(body.packaging)
                     if body.packaging is not None else DEFAULT_PACKAGING)
    except ValueError as exc:
        raise _unprocessable("invalid-packaging", "The packaging declaration is not valid",
                             str(exc)) from None
    tests = _tests_by_battery(body.functionality_tests)
    batteries = []
    for battery in dict.fromkeys(body.batteries):
        head, chemistry, mass = await _summary(app, battery)
        purpose = PURPOSES[body.purposes.get(battery, body.purpose)]
        batteries.append(BatteryShipment(battery, purpose, tests.get(battery), head, chemistry,
                                         mass, packaging))
    try:
        # The counterparty first: asking it stores nothing here, while our own attestation
        # allocates status entries, which a request refused for want of the other side's
        # attestation must not leave behind.
        theirs = await fetch_counterparty_attestation(app, agreement,
                                                      address=body.counterparty_address)
        _, own = await attest(app, agreement.id, now=now)
    except AttestationError as exc:
        raise exc.problem() from None
    consignment = Consignment(
        consignor=key.controller, consignee=body.consignee,
        destination_country=body.destination_country, agreement_id=agreement.id,
        policy_digest=policy_digest(agreement), batteries=batteries,
        attestations=[own, theirs["attestation"]],
        facility_authorisations=theirs["facilityAuthorisations"])
    try:
        declaration = await asyncio.to_thread(build_declaration, consignment, key, now)
    except (CredentialsError, ValueError) as exc:
        raise _unprocessable("declaration-refused", "The declaration cannot be built",
                             str(exc)) from None
    return web.json_response(declaration, status=201)


# --- verifying --------------------------------------------------------------------------------


async def _limited_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_DECLARATION_BYTES:
        raise ProblemError(body_too_large(MAX_DECLARATION_BYTES))
    raw = await request.content.read(MAX_DECLARATION_BYTES + 1)
    if len(raw) > MAX_DECLARATION_BYTES:
        raise ProblemError(body_too_large(MAX_DECLARATION_BYTES))
    return raw


def _parse(raw: bytes) -> Any:
    if not raw.strip():
        raise malformed_json("the request has no body; send the shipment declaration (JSON)")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise malformed_json(f"the declaration is not JSON: {exc}") from None


async def _verdict(request: web.Request, declaration: Any,
                   verifier: Verifier | None = None) -> Any:
    from connector.app import IDENTITY, VERIFIER
    from connector.shipments.rules import classify
    from connector.trust_registry import TRUST

    now = _now(request.app)
    checks = await check_signatures(declaration, verifier or request.config_dict[VERIFIER],
                                    now)
    verdict = classify(declaration, checks, request.config_dict[TRUST].current, now)
    verdict.sources = {"mode": "online", "node": request.config_dict[IDENTITY].did}
    return verdict


async def _form_declaration(request: web.Request) -> str | None:
    """The declaration text of the upload form (the file wins over the text box)."""
    found: dict[str, str] = {}
    reader = await request.multipart() if request.content_type.startswith("multipart/") \
        else None
    if reader is None:
        form = await request.post()
        for name in ("declaration", "declaration_file"):
            value = form.get(name)
            if isinstance(value, str):
                found[name] = value
    else:
        total = 0
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader) or part.name not in (
                    "declaration", "declaration_file"):
                continue
            data = bytearray()
            while chunk := await part.read_chunk(64 * 1024):
                data.extend(chunk)
                total += len(chunk)
                if total > MAX_DECLARATION_BYTES:
                    raise ProblemError(body_too_large(MAX_DECLARATION_BYTES))
            found[part.name] = data.decode("utf-8", errors="replace")
    for name in ("declaration_file", "declaration"):
        if found.get(name, "").strip():
            return found[name]
    return None


async def get_verify_page(request: web.Request) -> web.Response:
    return web.Response(text=render_page(), content_type=HTML)


async def post_verify(request: web.Request) -> web.Response:
    """JSON in → verdict JSON; an upload form in → the page with the verdict table."""
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        text = await _form_declaration(request)
        if text is None:
            return web.Response(text=render_page(error="no declaration was sent: choose a "
                                                 "file or paste its text"),
                                content_type=HTML, status=400)
        try:
            declaration = json.loads(text)
        except ValueError as exc:
            return web.Response(text=render_page(error=f"the declaration is not JSON: {exc}"),
                                content_type=HTML, status=400)
        verdict = await _verdict(request, declaration)
        return web.Response(text=render_page(verdict), content_type=HTML)
    declaration = _parse(await _limited_body(request))
    if not isinstance(declaration, dict):
        raise malformed_json("a shipment declaration is a JSON object (a presentation)")
    verdict = await _verdict(request, declaration)
    return web.json_response(verdict.to_json())


async def post_cache(request: web.Request) -> web.Response:
    """``POST /shipments/cache``: ``{"declarations": [...]}`` → the trust registry, and every
    DID document and status list that verifying those declarations used (plus the DID
    documents of the trusted issuers), for ``OfflineCache``."""
    from connector.app import CONFIG, HTTP_CLIENT, VERIFIER
    from connector.status_lists import STATUS_LISTS, status_fetcher
    from connector.trust_registry import TRUST

    data = _parse(await _limited_body(request))
    declarations = data.get("declarations", []) if isinstance(data, dict) else None
    if not isinstance(declarations, list):
        raise malformed_json('send {"declarations": [<declaration>, …]}')
    config = request.config_dict[CONFIG]
    node_verifier: Verifier = request.config_dict[VERIFIER]
    resolver = RecordingResolver(node_verifier.resolver)
    fetcher = RecordingFetcher(status_fetcher(request.config_dict[STATUS_LISTS],
                                              request.config_dict[HTTP_CLIENT],
                                              allow_http_loopback=config.is_local))
    verifier = Verifier(resolver, status_checker=StatusChecker(
        fetcher, resolver=resolver, max_age_s=config.status_max_age_s,
        on_unavailable=config.status_unavailable))
    registry = request.config_dict[TRUST].current
    now = _now(request.app)
    for declaration in declarations:
        await check_signatures(declaration, verifier, now)
    for entry in registry.entries():
        if entry.issuer.startswith("did:web:"):
            try:
                await resolver.resolve(entry.issuer)
            except CredentialsError:
                continue  # an issuer that cannot be resolved now is simply not cached
    return web.json_response({"trustRegistry": registry.to_json(),
                              "didDocuments": resolver.documents,
                              "statusLists": fetcher.lists,
                              "filledAt": format_datetime(now)})


def add_routes(app: web.Application) -> None:
    app[ATTESTATIONS] = {}
    app.router.add_post("/management/shipments", post_shipment)
    app.router.add_get(ATTESTATION_ROUTE, get_attestation)
    app.router.add_get("/shipments/verify", get_verify_page)
    app.router.add_post("/shipments/verify", post_verify)
    app.router.add_post("/shipments/cache", post_cache)


__all__ = ["MAX_DECLARATION_BYTES", "ShipmentRequest", "add_routes"]
