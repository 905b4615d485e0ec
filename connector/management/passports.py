"""Passports over the management API: mint a battery, append to its passport as its custodian,
and take over a passport that the previous custodian hands on.

Why these three and nothing more: along the value chain each party runs its own node, so each
step is an operator (or a script) telling its node to sign, and custody moves by the next node
receiving the chain. Nothing here trusts the caller's credential documents beyond their shape:

- ``POST /management/batteries`` mints a battery DID (its key kept, encrypted, in the node's
  keystore) and registers it; the passport is empty until its first entry.
- ``POST /management/batteries/{did}/credentials`` takes an *unsigned* credential, names the
  node as issuer, links it to the passport's head and signs it. The chain rules decide (only
  the custodian appends; the first entry makes its issuer custodian); a caller that names a
  ``previousCredential`` other than the head gets 409, so two operators never both append on
  a stale view.
- ``POST /management/batteries/import`` takes a whole chain (signed entries, in order) from the
  previous custodian: every proof, link, validity period and custody step is audited before
  anything is stored; when the node already holds part of it, what it holds must be the
  chain's beginning and only the rest is added.

Every refusal is problem JSON and leaves the store as it was.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from connector.management.assets import battery_json, conflict, credential_json, not_found
from connector.management.auth import require_operator
from connector.ops.metrics import count_issued
from connector.passports import PassportAppendError, append_to_passport
from connector.problems import ProblemDetails, ProblemError, parse_body, read_json_object
from connector.store import BatteryRecord, CredentialRecord
from credentials import JCS, JWT, RDFC
from credentials.errors import CredentialsError
from credentials.passport.audit import audit
from credentials.passport.chain import ChainEntry, PassportError
from credentials.passport.issuing import issue_passport_credential

MAX_IMPORT_ENTRIES = 10_000
Suite = Literal["eddsa-jcs-2022", "eddsa-rdfc-2022", "jwt"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatteryMint(_Body):
    """A new battery DID; ``label`` names its key in the keystore."""

    label: str = Field("", max_length=200)
    kind: Literal["battery", "pack", "module", "cell"] = "battery"
    parent_did: str | None = Field(None, alias="parentDid", pattern=r"^did:")


class PassportAppend(_Body):
    """An unsigned passport credential the node signs as issuer."""

    credential: dict[str, Any]
    suite: Suite = "eddsa-jcs-2022"


class PassportImport(_Body):
    """A passport handed on: its signed entries in chain order."""

    credentials: list[dict[str, Any] | str] = Field(min_length=1,
                                                     max_length=MAX_IMPORT_ENTRIES)


def _unprocessable(slug: str, title: str, detail: str, **extensions: Any) -> ProblemError:
    return ProblemError(ProblemDetails(422, slug, title, detail, extensions))


def _store(request: web.Request) -> Any:
    from connector.app import STORE

    return request.config_dict[STORE]


def _now(request: web.Request) -> Any:
    from connector.dsp.negotiation_service import service_of

    return service_of(request.app).settings.clock()


def _mint_key(request: web.Request, label: str) -> Any:
    """A fresh did:key kept in the node's keystore (blocking: argon2id)."""
    from connector.app import CONFIG
    from connector.identity import keystore_dir
    from credentials.keystore import Keystore

    config = request.config_dict[CONFIG]
    passphrase = os.environ.get(config.keystore_passphrase_env, "")
    return Keystore(keystore_dir(config), passphrase).new_key(label or "battery")


@require_operator
async def post_battery(request: web.Request) -> web.Response:
    body = parse_body(BatteryMint, await read_json_object(request))
    key = await asyncio.to_thread(_mint_key, request, body.label)
    record = BatteryRecord(did=key.controller, kind=body.kind, parent_did=body.parent_did,
                           key_id=key.key_id, properties={"label": body.label})
    async with _store(request).transaction() as tx:
        stored = await tx.put_battery(record)
    return web.json_response(battery_json(stored), status=201,
                             headers={"Location": f"/management/batteries/{stored.did}"})


def _prepare(unsigned: dict[str, Any], battery: str, issuer: str) -> dict[str, Any]:
    """The document to sign: the node as issuer, the battery as subject; shape errors → 422."""
    subject = unsigned.get("credentialSubject")
    if not isinstance(subject, dict):
        raise _unprocessable("invalid-credential", "Not a passport credential",
                             "credentialSubject must be one JSON object")
    if subject.get("id", battery) != battery:
        raise _unprocessable("wrong-battery", "Credential is about another battery",
                             f"credentialSubject.id is {subject.get('id')!r}, not {battery}")
    given = unsigned.get("issuer", issuer)
    given_id = given.get("id") if isinstance(given, dict) else given
    if given_id != issuer:
        raise _unprocessable("wrong-issuer", "This node cannot sign as that issuer",
                             f"issuer is {given_id!r}; this node signs as {issuer}")
    if "proof" in unsigned:
        raise _unprocessable("already-signed", "Credential is already signed",
                             "send the unsigned credential; the node adds the proof "
                             "(a signed chain goes to /management/batteries/import)")
    return {**unsigned, "issuer": given, "credentialSubject": {**subject, "id": battery}}


@require_operator
async def post_credential(request: web.Request) -> web.Response:
    from connector.app import IDENTITY

    battery = request.match_info["did"]
    body = parse_body(PassportAppend, await read_json_object(request))
    async with _store(request).read() as reader:
        if await reader.get_battery(battery) is None:
            raise not_found("battery", battery)
    key = request.config_dict[IDENTITY].signing_key
    document = _prepare(body.credential, battery, key.controller)
    asked = document["credentialSubject"].pop("previousCredential", None)
    suite = {"eddsa-jcs-2022": JCS, "eddsa-rdfc-2022": RDFC, "jwt": JWT}[body.suite]
    now = _now(request)

    def build(previous: str | None) -> Any:
        if asked is not None and asked != previous:
            raise _StaleHead(previous)
        linked = dict(document)
        if previous is not None:
            linked["credentialSubject"] = {**document["credentialSubject"],
                                           "previousCredential": previous}
        return issue_passport_credential(linked, key, suite=suite, now=now)

    try:
        record = await append_to_passport(request.app, battery, build)
    except _StaleHead as exc:
        raise conflict("stale-head", "The passport moved on",
                       f"previousCredential {asked} is not the head ({exc.head}); read the "
                       "passport again", head=exc.head) from None
    except PassportAppendError as exc:
        raise conflict("not-appended", "The passport refuses this entry", str(exc)) from None
    except (CredentialsError, ValueError) as exc:
        raise _unprocessable("invalid-credential", "The credential cannot be issued",
                             str(exc)) from None
    count_issued(request.app, "passport")  # for /metrics (connector.ops)
    return web.json_response(credential_json(record), status=201, headers={
        "Location": f"/management/batteries/{battery}/credentials"})


class _StaleHead(Exception):
    def __init__(self, head: str | None) -> None:
        super().__init__(head)
        self.head = head


@require_operator
async def import_passport(request: web.Request) -> web.Response:
    from connector.app import VERIFIER

    body = parse_body(PassportImport, await read_json_object(request))
    entries = list(body.credentials)
    report = await audit(entries, verifier=request.config_dict[VERIFIER], now=_now(request))
    if not report.ok or report.battery is None or report.order != list(range(len(entries))):
        findings = [f.to_json() for f in report.errors] if not report.ok else [
            {"type": "order", "message": "entries must be one chain, in chain order"}]
        raise _unprocessable("passport-not-verified", "The passport does not verify",
                             f"{len(findings)} problem(s); nothing was stored",
                             findings=findings)
    battery = report.battery
    try:
        chain = [ChainEntry.read(e) for e in entries]
    except PassportError as exc:  # audit passed, so this is a bug, not bad input
        raise _unprocessable("passport-not-verified", "The passport does not verify",
                             str(exc)) from None
    async with _store(request).transaction() as tx:
        known = await tx.get_battery(battery, for_update=True)
        held = await tx.passport(battery) if known is not None else []
        if [r.digest for r in held] != [c.digest for c in chain[:len(held)]]:
            raise conflict("diverged", "This node holds another version of the passport",
                           f"the node's {len(held)} entries of {battery} are not the "
                           "beginning of the chain sent", held=len(held))
        if known is None:
            await tx.put_battery(BatteryRecord(did=battery, properties={"imported": True}))
        for position in range(len(held), len(chain)):
            entry = chain[position]
            await tx.add_credential(CredentialRecord(
                battery_did=battery, position=position, digest=entry.digest,
                previous_digest=chain[position - 1].digest if position else None,
                issuer=entry.issuer, types=tuple(entry.types), credential=entries[position]))
    added = len(chain) - len(held)
    return web.json_response({"battery": battery, "length": len(chain), "added": added,
                              "custodian": report.custodian, "head": report.head},
                             status=201 if added else 200)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/management/batteries", post_battery)
    app.router.add_post("/management/batteries/import", import_passport)
    app.router.add_post("/management/batteries/{did}/credentials", post_credential)


__all__ = ["BatteryMint", "PassportAppend", "PassportImport", "add_routes"]
