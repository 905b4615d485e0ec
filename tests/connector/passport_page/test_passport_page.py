"""The passport page over HTTP on a real node (no browser): what an anonymous viewer gets in
HTML and JSON, what never reaches them, escaping, 404s, verification failures, statuses, QR
codes and the printed label."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import zxingcpp
from PIL import Image
from typer.testing import CliRunner

from connector import samples
from connector.app import IDENTITY, STORE
from connector.cli import app as cli_app
from connector.passport_page.disclosure import PUBLIC_ATTRIBUTES, public_attributes
from connector.passport_page.identifiers import battery_did as did_of_reference
from connector.passport_page.identifiers import page_path, passport_id
from connector.passport_page.loading import PAGE_VERIFICATION
from connector.passport_page.routes import wants
from connector.problems import PROBLEM_JSON
from connector.serve import RunningNode, running_node
from connector.store import CredentialRecord
from credentials import JCS
from credentials.passport.chain import credential_digest
from credentials.passport.issuing import issue_passport_credential
from tests.connector.passport_page.rich_passport import (
    DISMANTLING_STEP,
    IMG,
    RESTRICTED_MARKER,
    SCRIPT,
    RichPassport,
    append,
    battery_did,
    build_rich_passport,
    manufacturing,
    mint,
)
from tests.connector.test_node import node_config, passphrase  # noqa: F401
from vocab.access import AccessLevel, access_level

#: Values of restricted attributes the rich passport holds (besides RESTRICTED_MARKER).
RESTRICTED_VALUES = (RESTRICTED_MARKER, DISMANTLING_STEP, "LiNi0.8Mn0.1Co0.1O2", "UID-0000",
                     "module swelling", "CMR-")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    async with running_node(node_config(tmp_path / "node")) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def rich(node: RunningNode, client: aiohttp.ClientSession) -> RichPassport:
    return await build_rich_passport(node.app, client, node.url)


async def fetch(client: aiohttp.ClientSession, url: str, **headers: str
                ) -> tuple[aiohttp.ClientResponse, str]:
    async with client.get(url, headers=headers) as response:
        return response, await response.text()


def assert_no_restricted(text: str, rich: RichPassport) -> None:
    for value in (*RESTRICTED_VALUES, rich.vin):
        assert value not in text, f"restricted value {value!r} reached an anonymous viewer"


# --- the whitelist ----------------------------------------------------------------------------


def test_every_whitelisted_attribute_is_public_in_the_access_matrix() -> None:
    for credential_type, shown in PUBLIC_ATTRIBUTES.items():
        for item in shown:
            assert access_level(item.term) is AccessLevel.PUBLIC, (credential_type, item.term)
        assert public_attributes(credential_type) == shown


def test_passport_ids_turn_back_into_dids() -> None:
    did = battery_did(1)
    assert passport_id(did) == did.removeprefix("did:key:")
    assert did_of_reference(passport_id(did)) == did == did_of_reference(did)
    assert passport_id("did:web:oem.example:battery:1") == "did:web:oem.example:battery:1"
    with pytest.raises(ValueError):
        did_of_reference("<script>")


# --- the page, anonymous -----------------------------------------------------------------------


async def test_the_page_shows_public_data_and_never_restricted_data(
        node: RunningNode, client: aiohttp.ClientSession, rich: RichPassport) -> None:
    url = node.url + page_path(rich.battery)
    response, html = await fetch(client, url, Accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.status == 200 and response.content_type == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Vary"] == "Accept"
    assert "<script" not in html.lower()
    for text in (rich.battery_identifier, "Rated capacity", "Cellforge Europe GmbH",
                 "Waste (for recycling)", "Chain of custody", "State-of-health reading",
                 "Cell replaced", "Minimum from 2031-08-18", "Minimum from 2036-08-18",
                 "Cell temperature above the safe limit", "possible tampering",
                 "Available to certified recyclers under contract", 'class="soh-chart"'):
        assert text in html, text
    for pct in rich.soh:
        assert f"{pct} %" in html
    assert html.count("✔ verified") == 11
    assert_no_restricted(html, rich)

    response, text = await fetch(client, url, Accept="application/json")
    assert response.status == 200 and response.content_type == "application/json"
    assert response.headers["Vary"] == "Accept"
    view = json.loads(text)
    assert view["battery"] == rich.battery and view["status"]["value"] == "waste"
    assert view["pageUrl"] == node.url + page_path(rich.battery)
    assert [p["pct"] for p in view["stateOfHealth"]] == rich.soh
    assert len(view["custody"]) == 11 and all(c["verified"] for c in view["custody"])
    dismantling = next(s for s in view["restricted"] if s["category"] == "dismantling-safety")
    assert dismantling["offers"] == [{"dataset": rich.asset_id, "offer": rich.offer_id}]
    assert_no_restricted(text, rich)
    assert (await fetch(client, url + "?format=json"))[1] == text


async def test_request_access_page_names_the_offer_and_the_command(
        node: RunningNode, client: aiohttp.ClientSession, rich: RichPassport) -> None:
    url = node.url + page_path(rich.battery) + "/access/dismantling-safety"
    response, html = await fetch(client, url)
    assert response.status == 200
    assert rich.asset_id in html and rich.offer_id is not None
    assert (f"bpc negotiate {node.url} --offer {rich.offer_id} --provider-did "
            f"{node.app[IDENTITY].did}") in " ".join(html.split())
    assert_no_restricted(html, rich)
    response, _ = await fetch(client, node.url + page_path(rich.battery) + "/access/secrets")
    assert response.status == 404


async def test_verification_is_cached_per_chain_head(
        node: RunningNode, client: aiohttp.ClientSession, rich: RichPassport) -> None:
    cache = node.app[PAGE_VERIFICATION]
    url = node.url + page_path(rich.battery)
    await fetch(client, url)
    audits = cache.audits
    await fetch(client, url + "?format=json")
    assert cache.audits == audits
    await append(node.app, rich.battery, lambda p: samples.state_of_health(
        rich.battery, node.app[IDENTITY].did, rng=random.Random(99), previous=p))
    _, text = await fetch(client, url + "?format=json")
    assert cache.audits == audits + 1 and len(json.loads(text)["custody"]) == 12


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["z6MkqRYqQiSgvZQdnBytw86Qbs2ZWUkGv22od935YF4s8M7V",
                                       "did:web:nowhere.example:battery:1",
                                       "%3Cscript%3Ealert(1)%3C%2Fscript%3E"])
async def test_unknown_batteries_get_a_clear_404(
        node: RunningNode, client: aiohttp.ClientSession, reference: str) -> None:
    url = f"{node.url}/passport/{reference}"
    response, html = await fetch(client, url)
    assert response.status == 404 and response.content_type == "text/html"
    assert "No such battery passport" in html and "<script>alert" not in html
    assert "Content-Security-Policy" in response.headers
    response, text = await fetch(client, url, Accept="application/json")
    assert response.status == 404 and response.content_type == PROBLEM_JSON
    body = json.loads(text)
    assert body["type"].endswith("#passport-not-found") and body["status"] == 404
    response, _ = await fetch(client, url + "/qr.png")
    assert response.status == 404


async def test_an_unknown_format_is_a_problem(
        node: RunningNode, client: aiohttp.ClientSession, rich: RichPassport) -> None:
    response, text = await fetch(client, node.url + page_path(rich.battery) + "?format=xml")
    assert response.status == 400 and response.content_type == PROBLEM_JSON
    assert "format must be html or json" in json.loads(text)["detail"]


async def test_markup_in_a_credential_renders_as_text(
        node: RunningNode, client: aiohttp.ClientSession) -> None:
    did = battery_did(21)
    await mint(node.app, did)
    await append(node.app, did, lambda p: manufacturing(
        did, node.app[IDENTITY].did, p, manufacturerName=SCRIPT, batteryModel=IMG))
    url = node.url + page_path(did)
    _, html = await fetch(client, url)
    assert SCRIPT not in html and "<img src=x" not in html and "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    _, text = await fetch(client, url, Accept="application/json")
    values = {a["term"]: a["value"] for a in json.loads(text)["attributes"]}
    assert values["manufacturerName"] == SCRIPT and values["batteryModel"] == IMG


async def test_a_tampered_entry_is_shown_unverified_with_its_reason(
        node: RunningNode, client: aiohttp.ClientSession) -> None:
    app, did = node.app, battery_did(22)
    issuer, key = app[IDENTITY].did, app[IDENTITY].signing_key
    await mint(app, did)
    head = await append(app, did, lambda p: manufacturing(did, issuer, p))
    signed = issue_passport_credential(samples.state_of_health(
        did, issuer, rng=random.Random(5), previous=head), key, suite=JCS)
    assert isinstance(signed, dict)
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["stateOfHealthPct"] = "99.9"  # after signing
    async with app[STORE].transaction() as tx:
        await tx.add_credential(CredentialRecord(
            battery_did=did, position=1, digest=credential_digest(tampered),
            previous_digest=head, issuer=issuer,
            types=("VerifiableCredential", "StateOfHealthCredential"), credential=tampered))
    url = node.url + page_path(did)
    _, html = await fetch(client, url)
    assert "✘ not verified" in html and "1 of 2 entries failed verification" in html
    assert "the signature does not match the content" in html
    _, text = await fetch(client, url, Accept="application/json")
    view = json.loads(text)
    failed = view["custody"][1]
    assert failed["verified"] is False
    assert "bad-signature" in {p["type"] for p in failed["problems"]}
    assert view["stateOfHealth"] == []  # data of a failed entry is not shown
    assert view["verification"] == {"ok": False, "unverifiedEntries": 1, "problems": []}


# --- statuses --------------------------------------------------------------------------------


async def _status(client: aiohttp.ClientSession, node: RunningNode, did: str) -> str:
    _, text = await fetch(client, node.url + page_path(did) + "?format=json")
    return str(json.loads(text)["status"]["value"])


async def test_statuses_follow_the_chain(node: RunningNode, client: aiohttp.ClientSession,
                                         rich: RichPassport) -> None:
    app = node.app
    issuer, key = app[IDENTITY].did, app[IDENTITY].signing_key
    original = battery_did(31)
    await mint(app, original)
    head = await append(app, original, lambda p: manufacturing(original, issuer, p))
    assert await _status(client, node, original) == "original"
    assert await _status(client, node, rich.battery) == "waste"

    second_life = battery_did(32)
    await mint(app, second_life)
    first = issue_passport_credential(samples.repurposing(
        second_life, original, issuer, previous=head, rng=random.Random(3)), key, suite=JCS)
    async with app[STORE].transaction() as tx:
        await tx.add_credential(CredentialRecord(
            battery_did=second_life, position=0, digest=credential_digest(first),
            previous_digest=head, issuer=issuer,
            types=("VerifiableCredential", "RepurposingCredential"), credential=first))
    assert await _status(client, node, second_life) == "repurposed"
    _, text = await fetch(client, node.url + page_path(second_life) + "?format=json")
    view = json.loads(text)
    assert view["custody"][0]["verified"] is True  # the link to the original is checked
    link = next(a for a in view["attributes"] if a["term"] == "originalBattery")
    assert link["value"] == original

    recycled = battery_did(33)
    await mint(app, recycled)
    await append(app, recycled, lambda p: manufacturing(recycled, issuer, p))
    await append(app, recycled, lambda p: samples.recycle_battery(
        recycled, issuer, rng=random.Random(4), previous=p)[0])
    assert await _status(client, node, recycled) == "recycled"


def test_content_negotiation_ranks_accept() -> None:
    from aiohttp.test_utils import make_mocked_request

    def choice(accept: str, query: str = "") -> str:
        return wants(make_mocked_request("GET", "/passport/x" + query,
                                         headers={"Accept": accept}))

    assert choice("text/html,application/xhtml+xml,*/*;q=0.8") == "text/html"
    assert choice("application/json") == "application/json"
    assert choice("application/json;q=0.5, text/html") == "text/html"
    assert choice("*/*") == "text/html"
    assert choice("application/json", "?format=html") == "text/html"


# --- QR codes and the label ------------------------------------------------------------------


def decode(png: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))]


async def test_qr_codes_carry_the_public_page_url_whatever_the_host_header(
        node: RunningNode, client: aiohttp.ClientSession, rich: RichPassport) -> None:
    page = node.url + page_path(rich.battery)
    async with client.get(page + "/qr.png", headers={"Host": "evil.example"}) as response:
        assert response.status == 200 and response.content_type == "image/png"
        png = await response.read()
    assert decode(png) == [page]
    async with client.get(page + "/qr.svg") as response:
        assert response.content_type == "image/svg+xml"
        svg = await response.text()
    assert svg.startswith("<?xml") and "<path" in svg and "<script" not in svg


async def test_bpc_passport_qr_writes_a_printable_label(
        node: RunningNode, rich: RichPassport, tmp_path: Path) -> None:
    label = tmp_path / "label.png"
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, cli_app, [
        "passport", "qr", rich.battery, "-o", str(label), "--node", node.url])
    assert result.exit_code == 0, result.output
    image = Image.open(label)
    assert image.height > image.width  # the text sits under the code
    assert decode(label.read_bytes()) == [node.url + page_path(rich.battery)]

    offline = tmp_path / "offline.png"
    result = await asyncio.to_thread(runner.invoke, cli_app, [
        "passport", "qr", rich.battery, "-o", str(offline), "--node", "https://oem.example",
        "--offline"])
    assert result.exit_code == 0, result.output
    assert decode(offline.read_bytes()) == ["https://oem.example" + page_path(rich.battery)]

    missing = await asyncio.to_thread(runner.invoke, cli_app, [
        "passport", "qr", battery_did(77), "-o", str(tmp_path / "x.png"), "--node", node.url])
    assert missing.exit_code != 0 and "keeps no passport" in str(missing.exception)
    assert not (tmp_path / "x.png").exists()


