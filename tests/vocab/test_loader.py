"""The offline JSON-LD document loader and the bundled contexts it serves."""

from __future__ import annotations

import json
import socket
from importlib import resources
from typing import Any

import pytest

from credentials.errors import CredentialsError, DisallowedContext
from credentials.jsonld import canonize_rdfc, expand_strict
from vocab import (
    BATTERY_CONTEXT_V1,
    BATTERY_VOCAB,
    CREDENTIALS_V1,
    CREDENTIALS_V2,
    DATA_INTEGRITY_V2,
    DID_V1,
    ED25519_2020_V1,
    MULTIKEY_V1,
    ContextNotAllowed,
    document_loader,
    known_context_urls,
)
from vocab.contexts_bundle import context_origin

STATUS_LIST_V1 = "https://www.w3.org/ns/credentials/status/v1"
XSD = "http://www.w3.org/2001/XMLSchema#"

REQUIRED = {
    CREDENTIALS_V1: "https://www.w3.org/2018/credentials/v1",
    CREDENTIALS_V2: "https://www.w3.org/ns/credentials/v2",
    DATA_INTEGRITY_V2: "https://w3id.org/security/data-integrity/v2",
    MULTIKEY_V1: "https://w3id.org/security/multikey/v1",
    ED25519_2020_V1: "https://w3id.org/security/suites/ed25519-2020/v1",
    STATUS_LIST_V1: STATUS_LIST_V1,
    DID_V1: "https://www.w3.org/ns/did/v1",
    BATTERY_CONTEXT_V1: "https://w3id.org/battery-passport-connector/battery/v1",
}


def _index() -> dict[str, dict[str, str]]:
    raw = resources.files("vocab").joinpath("contexts/index.json").read_text("utf-8")
    index: dict[str, dict[str, str]] = json.loads(raw)
    return index


def test_constants_name_the_published_urls() -> None:
    for constant, url in REQUIRED.items():
        assert constant == url
    assert BATTERY_VOCAB == "https://w3id.org/battery-passport-connector/vocab#"


@pytest.mark.parametrize("url", sorted(known_context_urls()))
def test_every_known_context_loads(url: str) -> None:
    remote = document_loader(url)
    assert remote["documentUrl"] == url
    assert remote["contextUrl"] is None
    assert remote["contentType"] == "application/ld+json"
    assert isinstance(remote["document"], dict)
    assert "@context" in remote["document"]


@pytest.mark.parametrize("url", sorted(REQUIRED.values()))
def test_required_contexts_are_bundled(url: str) -> None:
    assert url in known_context_urls()


def test_index_lists_exactly_the_known_contexts() -> None:
    assert set(_index()) == known_context_urls()


@pytest.mark.parametrize("url", sorted(known_context_urls()))
def test_index_names_origin_and_licence(url: str) -> None:
    entry = _index()[url]
    for field in ("file", "origin", "licence"):
        assert isinstance(entry.get(field), str), field
        assert entry[field].strip(), field
    assert resources.files("vocab").joinpath("contexts", entry["file"]).is_file()
    assert context_origin(url) == entry


@pytest.mark.parametrize("url", [
    "https://evil.example/ctx",
    "http://www.w3.org/ns/credentials/v2",  # http, not https
    "https://www.w3.org/ns/credentials/v2/",  # trailing slash
    "https://www.w3.org/ns/credentials/v3",
    "",
])
def test_unknown_url_is_refused(url: str) -> None:
    with pytest.raises(ContextNotAllowed) as info:
        document_loader(url)
    assert isinstance(info.value, ValueError)
    assert info.value.url == url


def test_loader_returns_a_copy() -> None:
    first = document_loader(CREDENTIALS_V2)["document"]
    pristine = json.dumps(first, sort_keys=True)
    first["@context"]["@protected"] = False
    first["@context"]["injected"] = "https://evil.example/term"
    first["@context"]["VerifiableCredential"] = "https://evil.example/VC"
    first.clear()
    second = document_loader(CREDENTIALS_V2)["document"]
    assert json.dumps(second, sort_keys=True) == pristine
    assert second is not first


def test_loader_copies_nested_structures() -> None:
    first = document_loader(BATTERY_CONTEXT_V1)["document"]
    first["@context"]["cellCount"]["@id"] = "https://evil.example/cells"
    second = document_loader(BATTERY_CONTEXT_V1)["document"]
    assert second["@context"]["cellCount"]["@id"] == "bp:cellCount"


# --- no network, ever -------------------------------------------------------------------------


def _credential() -> dict[str, Any]:
    did = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
    return {
        "@context": [CREDENTIALS_V2, BATTERY_CONTEXT_V1],
        "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
        "type": ["VerifiableCredential", "BatteryManufacturingCredential"],
        "issuer": did,
        "validFrom": "2024-01-01T00:00:00Z",
        "credentialSubject": {
            "id": "did:key:z6MkhWqdDBPojHA7cprTGTt5yHv5yUi1B8cnXn8ReLumkw6E",
            "type": "Battery",
            "batteryModel": "BP-75",
            "manufacturingDate": "2024-01-01",
            "cellCount": 96,
            "ratedEnergyKWh": "75.0",
            "materialInput": [{"batch": "urn:example:batch:1", "massKg": "98.5"}],
        },
    }


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_canonize_works_offline(no_network: list[Any]) -> None:
    nquads = canonize_rdfc(_credential())
    assert f"<{BATTERY_VOCAB}batteryModel> \"BP-75\"" in nquads
    assert f"<{BATTERY_VOCAB}cellCount> \"96\"^^<{XSD}integer>" in nquads
    assert no_network == []


def test_canonize_every_bundled_context_offline(no_network: list[Any]) -> None:
    """Each bundled context (and whatever it imports) resolves from memory only."""
    for url in sorted(known_context_urls()):
        try:
            canonize_rdfc({"@context": url, "@id": "urn:example:x"})
        except DisallowedContext:
            raise
        except CredentialsError:
            pass  # only the network matters here (the attempts list records any access)
    assert no_network == []


def test_unknown_top_level_context_is_disallowed_offline(no_network: list[Any]) -> None:
    doc = _credential()
    doc["@context"] = [CREDENTIALS_V2, "https://evil.example/ctx"]
    with pytest.raises(DisallowedContext):
        canonize_rdfc(doc)
    assert no_network == []


def test_unknown_embedded_context_is_disallowed_offline(no_network: list[Any]) -> None:
    """A context named inside the document bypasses the top-level pre-check: the loader
    itself must refuse it, and the refusal must surface as DisallowedContext."""
    doc = _credential()
    doc["credentialSubject"]["@context"] = "https://evil.example/ctx"
    with pytest.raises(DisallowedContext):
        canonize_rdfc(doc)
    assert no_network == []


def test_unknown_imported_context_is_disallowed_offline(no_network: list[Any]) -> None:
    doc = _credential()
    doc["@context"] = [CREDENTIALS_V2, {"@import": "https://evil.example/ctx"}]
    with pytest.raises(DisallowedContext):
        canonize_rdfc(doc)
    assert no_network == []


# --- the battery vocabulary -------------------------------------------------------------------


def _battery_terms() -> dict[str, Any]:
    context = document_loader(BATTERY_CONTEXT_V1)["document"]["@context"]
    return {k: v for k, v in context.items() if not k.startswith("@")}


def test_battery_context_prefixes() -> None:
    terms = _battery_terms()
    assert terms["bp"] == BATTERY_VOCAB
    assert terms["xsd"] == XSD


BATTERY_TERMS = sorted(set(_battery_terms()) - {"bp", "xsd"})


def test_battery_context_defines_terms() -> None:
    assert len(BATTERY_TERMS) > 10
    assert {"Battery", "BatteryManufacturingCredential", "passportIdentifier"} <= set(
        BATTERY_TERMS)


@pytest.mark.parametrize("term", BATTERY_TERMS)
def test_battery_term_expands_under_the_vocab(term: str) -> None:
    expanded = expand_strict({
        "@context": BATTERY_CONTEXT_V1,
        "@id": "urn:example:subject",
        term: "urn:example:value",
    })
    properties = [k for k in expanded[0] if not k.startswith("@")]
    assert properties == [BATTERY_VOCAB + term]


@pytest.mark.parametrize("term", BATTERY_TERMS)
def test_battery_term_as_type_expands_under_the_vocab(term: str) -> None:
    expanded = expand_strict({
        "@context": BATTERY_CONTEXT_V1,
        "@id": "urn:example:subject",
        "@type": term,
    })
    assert expanded[0]["@type"] == [BATTERY_VOCAB + term]
