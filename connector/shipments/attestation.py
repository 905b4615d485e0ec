"""Signed agreement attestations: a DSP contract agreement "signed by both parties".

Dataspace Protocol agreements carry no signatures: each node stores the ODRL agreement it
negotiated, and nothing in it proves to a third party (a customs officer) that both sides
agreed. So each party can attest the agreement it is party to with a
``ContractAgreementCredential`` signed by its own DID key:

* subject ``id`` = the agreement id; ``agreementProvider`` / ``agreementConsumer`` (DIDs);
  ``agreementTarget`` (the asset); ``policyDigest`` = the multibase SHA-256 of the RFC 8785
  (JCS) form of the stored agreement document (both sides store the same ODRL JSON, so both
  attest the same digest); ``agreementSignedAt``;
* ``validFrom`` = now; ``validUntil`` = when the agreement ends (its ``not_after``, else the end
  of its policy's usage window, found by probing ``is_in_force``), capped at
  ``MAX_ATTESTATION_DAYS`` (an attestation of an open-ended agreement is renewed by attesting
  again);
* a revocation and a suspension entry in the node's status lists, so a party that terminates
  the agreement can revoke its attestation.

The counterparty's attestation is fetched from its node over our protocol extension
``GET /dsp-ext/agreements/{id}/attestation``: the request is signed with the caller's DID key
(``connector.participant_auth``, the same self-issued token the DSP endpoints take), and only
the agreement's counterparty gets an answer (anyone else: 404, as for an unknown agreement, so
agreement ids cannot be probed). The answer also carries the node's
``TreatmentFacilityAuthorisationCredential``s from its wallet, which the shipper needs in its
declaration. An unauthenticated request gets the DSP-style 401 of ``participant_auth``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from connector.dsp.agreements import why_agreement_ended
from connector.policy_gate import is_in_force
from connector.problems import ProblemDetails, ProblemError
from connector.store import AgreementRecord
from credentials import JCS, Ed25519Key
from credentials.did_web import DID_WEB_PREFIX, did_web_to_url
from credentials.errors import CredentialsError
from credentials.issuer import issue_credential
from credentials.model import types_of
from credentials.passport.chain import credential_digest
from credentials.passport.types import ContractAgreement, build_credential
from credentials.timestamps import format_datetime

ATTESTATION_ROUTE = "/dsp-ext/agreements/{id}/attestation"
MAX_ATTESTATION_DAYS = 365
FACILITY_AUTHORISATION = "TreatmentFacilityAuthorisationCredential"
MAX_ANSWER_BYTES = 1024 * 1024
MAX_REMEMBERED = 10_000
"""Attestations kept per node process (oldest forgotten first; then issued again)."""

ATTESTATIONS = web.AppKey("agreement_attestations", dict)
"""Agreement id → this node's signed attestation of it: repeated requests of the counterparty
(and every declaration) get the same credential, valid until the agreement ends, instead of
a new one and a new status-list entry each."""


class AttestationError(Exception):
    """The node cannot attest (or obtain an attestation of) the agreement; ``slug`` says why."""

    def __init__(self, status: int, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail

    def problem(self) -> ProblemError:
        return ProblemError(ProblemDetails(self.status, self.slug,
                                           "The agreement cannot be attested", self.detail))


def policy_digest(agreement: AgreementRecord) -> str:
    """What both parties sign: the digest of the agreement document as stored."""
    return credential_digest(dict(agreement.agreement))


def agreement_end(agreement: AgreementRecord, now: datetime) -> datetime:
    """When the agreement stops being in force (at most ``MAX_ATTESTATION_DAYS`` from now).

    Usage windows (``elapsedTime``, Catena-X end dates) are found by bisection on
    ``is_in_force``, to the second: the engine answers "in force at t?", not "until when?".
    """
    cap = now + timedelta(days=MAX_ATTESTATION_DAYS)
    if agreement.not_after is not None:
        cap = min(cap, agreement.not_after)
    policy, start = agreement.agreement, agreement.signed_at
    if is_in_force(policy, start, cap):
        return cap
    low, high = now, cap
    while (high - low) > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if is_in_force(policy, start, middle):
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def attestation_credential(agreement: AgreementRecord, issuer: str, now: datetime,
                           valid_until: datetime) -> dict[str, Any]:
    """The unsigned ``ContractAgreementCredential`` of ``issuer`` for ``agreement``."""
    subject = ContractAgreement(
        id=agreement.id, agreement_provider=agreement.provider_did,
        agreement_consumer=agreement.consumer_did, agreement_target=agreement.asset_id,
        policy_digest=policy_digest(agreement), agreement_signed_at=agreement.signed_at)
    return build_credential(subject, issuer=issuer, valid_from=now, valid_until=valid_until)


async def attest(app: web.Application, agreement_id: str, *, now: datetime,
                 party: str | None = None) -> tuple[AgreementRecord, dict[str, Any]]:
    """This node's signed attestation of an agreement it is party to and that is in force.

    ``party``: the DID that asks (the counterparty over the extension endpoint); it must be
    the agreement's other party, else the agreement is "unknown" to it.
    """
    from connector.app import IDENTITY, STORE
    from connector.status_lists import STATUS_LISTS

    key: Ed25519Key = app[IDENTITY].signing_key
    async with app[STORE].read() as reader:
        agreement = await reader.get_agreement(agreement_id)
        ended = (await why_agreement_ended(reader, agreement, now)
                 if agreement is not None else None)
    parties = ((agreement.provider_did, agreement.consumer_did) if agreement is not None
               else ())
    if agreement is None or key.controller not in parties or (
            party is not None and (party == key.controller or party not in parties)):
        raise AttestationError(404, "unknown-agreement",
                               f"no agreement {agreement_id} between this node and the caller")
    if ended is not None:
        raise AttestationError(409, "agreement-ended",
                               f"agreement {agreement_id} is no longer in force: {ended}")
    issued = app[ATTESTATIONS]
    signed = issued.get(agreement.id)
    if signed is None:  # once per agreement: each issue takes a status-list entry
        unsigned = attestation_credential(agreement, key.controller, now,
                                          agreement_end(agreement, now))

        def sign(document: dict[str, Any]) -> dict[str, Any]:
            return issue_credential(document, key, suite=JCS, now=now)

        signed = await app[STATUS_LISTS].issue_with_status(unsigned, sign)
        if len(issued) >= MAX_REMEMBERED:
            issued.pop(next(iter(issued)))
        issued[agreement.id] = signed
    return agreement, signed


async def facility_authorisations(app: web.Application, now: datetime) -> list[dict[str, Any]]:
    """The node's own ``TreatmentFacilityAuthorisationCredential``s (its wallet), still valid."""
    from connector.app import STORE

    async with app[STORE].read() as reader:
        held = await reader.list_wallet_credentials(limit=500)
    return [dict(record.document) for record in held
            if FACILITY_AUTHORISATION in record.types
            and (record.valid_until is None or record.valid_until > now)]


def node_address(did: str) -> str:
    """The base URL of a participant's node from its did:web (loopback may be plain http)."""
    if not did.startswith(DID_WEB_PREFIX):
        raise AttestationError(422, "no-counterparty-address",
                               f"{did} is not a did:web; give the counterparty's address")
    url = did_web_to_url(did, allow_http=True)
    return url.removesuffix("/.well-known/did.json").removesuffix("/did.json")


async def fetch_counterparty_attestation(
    app: web.Application, agreement: AgreementRecord, *, address: str | None = None,
) -> dict[str, Any]:
    """``{"attestation": …, "facilityAuthorisations": […]}`` from the other party's node,
    asked with a request signed by this node (participant_auth)."""
    from connector.app import HTTP_CLIENT, IDENTITY
    from connector.dsp.negotiation_service import dsp_state
    from connector.participant_auth import RequestSigner

    key: Ed25519Key = app[IDENTITY].signing_key
    other = (agreement.consumer_did if agreement.provider_did == key.controller
             else agreement.provider_did)
    base = (address or node_address(other)).rstrip("/")
    url = base + ATTESTATION_ROUTE.format(id=quote(agreement.id, safe=""))
    signer = RequestSigner(key, clock=dsp_state(app).settings.clock)
    headers = signer.headers(audience=other, method="GET", url=url, body=b"")
    session: aiohttp.ClientSession = app[HTTP_CLIENT]
    try:
        async with session.get(url, headers=headers, allow_redirects=False) as response:
            raw = await response.content.read(MAX_ANSWER_BYTES + 1)
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise AttestationError(502, "counterparty-unreachable",
                               f"cannot reach {other} at {base}: {exc}") from exc
    if status != 200:
        said = raw[:500].decode(errors="replace")
        raise AttestationError(502, "counterparty-refused",
                               f"{other} answered HTTP {status}: {said}")
    try:
        answer = json.loads(raw)
    except ValueError as exc:
        raise AttestationError(502, "counterparty-refused",
                               f"{other} did not answer JSON") from exc
    attestation = answer.get("attestation") if isinstance(answer, dict) else None
    if not isinstance(attestation, dict) or "ContractAgreementCredential" not in (
            _types(attestation)):
        raise AttestationError(502, "counterparty-refused",
                               f"{other} sent no ContractAgreementCredential")
    authorisations = answer.get("facilityAuthorisations") or []
    return {"attestation": attestation,
            "facilityAuthorisations": [a for a in authorisations if isinstance(a, dict)]}


def _types(document: dict[str, Any]) -> list[str]:
    try:
        return types_of(document)
    except CredentialsError:
        return []


async def get_attestation(request: web.Request) -> web.Response:
    """``GET /dsp-ext/agreements/{id}/attestation`` for the agreement's counterparty only."""
    from connector.dsp.inbound import authenticate
    from connector.dsp.negotiation_service import service_of
    from connector.participant_auth import ParticipantAuthError

    try:
        caller = await authenticate(request)
    except ParticipantAuthError as exc:
        return exc.response()
    now = service_of(request.app).settings.clock()
    try:
        _, attestation = await attest(request.app, request.match_info["id"], now=now,
                                      party=caller)
        authorisations = await facility_authorisations(request.app, now)
    except AttestationError as exc:
        raise exc.problem() from None
    except CredentialsError as exc:
        raise AttestationError(500, "attestation-failed", str(exc)).problem() from None
    return web.json_response({"attestation": attestation,
                              "facilityAuthorisations": authorisations,
                              "issuedAt": format_datetime(now)})


__all__ = ["ATTESTATIONS", "ATTESTATION_ROUTE", "AttestationError", "agreement_end", "attest",
           "attestation_credential", "facility_authorisations",
           "fetch_counterparty_attestation", "get_attestation", "node_address",
           "policy_digest"]
