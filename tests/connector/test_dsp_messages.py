"""DSP 2025-1 messages: official examples round-trip, our messages validate, bad input is typed.

The official examples and schemas come from ``../shared/dsp/dsp-2025-1`` (CI provides it beside
the repository); tests that need them are skipped when it is absent. The bundled copies under
``connector/dsp/data`` are checked against that folder and against ``data/ORIGIN.md``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft201909Validator
from pyld import jsonld
from referencing.exceptions import Unresolvable

from connector.dsp import messages as m
from connector.dsp import negotiation, schemas, transfer
from connector.dsp.errors import Area, ErrorCode, ProtocolError
from connector.dsp.jsonld import ContextNotBundled, document_loader
from connector.dsp.process import TerminationKind, TerminationReason

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared" / "dsp" / "dsp-2025-1").resolve()
EXAMPLES = sorted((SHARED / "examples").glob("*/*.json")) if SHARED.is_dir() else []
DATA = Path(m.__file__).with_name("data")
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"DSP reference files not found at {SHARED} (CI provides them)"
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Schema and context resolution must never open a connection."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def kind_of(document: dict[str, Any]) -> str:
    if "@type" in document:
        return str(document["@type"])
    return "VersionResponse" if "protocolVersions" in document else "DidService"


def parse_any(document: dict[str, Any]) -> m.Node:
    if "@type" in document:
        return m.parse_message(document)
    if "protocolVersions" in document:
        return m.parse_version_response(document)
    return m.parse_did_service(document)


def expand(document: dict[str, Any]) -> Any:
    return jsonld.expand(copy.deepcopy(document), {"documentLoader": document_loader})


# --- bundled data ------------------------------------------------------------------------------


def bundled_files() -> list[Path]:
    return sorted(p for p in DATA.rglob("*") if p.is_file() and p.name != "ORIGIN.md")


def test_every_bundled_file_is_listed_in_origin_with_its_checksum() -> None:
    origin = (DATA / "ORIGIN.md").read_text("utf-8")
    listed = {
        name: digest for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", origin, re.M)
    }
    actual = {
        str(p.relative_to(DATA)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in bundled_files()
    }
    assert listed == actual


@needs_shared
def test_bundled_files_equal_the_shared_reference_copies() -> None:
    for path in bundled_files():
        relative = path.relative_to(DATA)
        assert path.read_bytes() == (SHARED / relative).read_bytes(), relative


def test_every_schema_is_registered_under_its_id() -> None:
    for relative in {*schemas.SCHEMA_FILES.values()}:
        assert schemas.load_schema(relative)["$id"] == schemas.BASE_URI + relative


# --- official examples -------------------------------------------------------------------------


@needs_shared
def test_there_are_27_official_examples() -> None:
    assert len(EXAMPLES) == 27


@needs_shared
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_official_example_parses_and_reserialises_to_a_schema_valid_equal_document(
    path: Path,
) -> None:
    original = load(path)
    parsed = parse_any(original)
    out = parsed.to_json()
    assert out == original
    assert schemas.schema_errors(out, kind_of(original)) == []
    assert parse_any(out) == parsed


@needs_shared
@pytest.mark.parametrize(
    "path",
    [p for p in EXAMPLES if p.parent.name != "common"],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_reserialised_example_means_the_same_as_json_ld(path: Path) -> None:
    """Expanded with the bundled contexts (offline), our output equals the original's RDF."""
    original = load(path)
    assert expand(m.parse_message(original).to_json()) == expand(original)


def test_the_json_ld_loader_serves_only_the_bundled_contexts() -> None:
    assert document_loader(m.DSP_CONTEXT)["document"]["@context"]["@protected"] is True
    with pytest.raises(ContextNotBundled):
        document_loader("https://w3id.org/catenax/2025/9/policy/context.jsonld")


# --- messages we build -------------------------------------------------------------------------

OFFER = m.MessageOffer(
    id="urn:uuid:offer-1",
    target="urn:uuid:dataset-1",
    permission=[
        m.Rule(
            action="use",
            constraint=[
                m.LogicalConstraint(
                    and_=[
                        m.AtomicConstraint(
                            left_operand="purpose", operator="isAnyOf", right_operand=["a", "b"]
                        ),
                        m.AtomicConstraint(
                            left_operand="dateTime", operator="lteq", right_operand="2030-01-01"
                        ),
                    ]
                )
            ],
        )
    ],
)
AGREEMENT = negotiation.agreement_from_offer(
    OFFER,
    agreement_id="urn:uuid:agreement-1",
    assigner="did:web:provider.example",
    assignee="did:web:consumer.example",
    timestamp=datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
)
EDR = m.DataAddress(
    endpoint_type="https://w3id.org/idsa/v4.1/HTTP",
    endpoint="https://provider.example/public",
    endpoint_properties=[
        m.EndpointProperty(name="authorization", value="eyJ..."),
        m.EndpointProperty(name="authType", value="bearer"),
    ],
)
PN = negotiation.Requested(consumer_pid="urn:uuid:c", provider_pid="urn:uuid:p", offer=OFFER)
PT = transfer.Requested(
    consumer_pid="urn:uuid:c",
    provider_pid="urn:uuid:p",
    agreement_id="urn:a",
    format="HttpData-PULL",
)
REASON = TerminationReason(TerminationKind.POLICY, "cx-policy:UsagePurpose", "purpose not offered")
SERVICE = m.DataService(id="urn:svc", type="DataService", endpoint_url="https://p.example/dsp")
DATASET = m.Dataset(
    id="urn:uuid:dataset-1",
    has_policy=[m.Offer(id="urn:uuid:offer-1", permission=[m.Rule(action="use")])],
    distribution=[m.Distribution(format="HttpData-PULL", access_service="urn:svc")],
    title="Battery passport of SN-42",  # an extra DCT term travels untouched
)

BUILT: dict[str, Callable[[], m.Message]] = {
    "CatalogRequestMessage": lambda: m.CatalogRequestMessage(filter=[]),
    "DatasetRequestMessage": lambda: m.DatasetRequestMessage(dataset="urn:uuid:dataset-1"),
    "Catalog": lambda: m.RootCatalog(
        id="urn:cat", participant_id="did:web:p.example", dataset=[DATASET], service=[SERVICE]
    ),
    "Dataset": lambda: m.RootDataset(**DATASET.model_dump(by_alias=True)),
    "CatalogError": lambda: ProtocolError(
        Area.CATALOG, 404, ErrorCode.UNKNOWN_PROCESS, "no such dataset"
    ).body(),
    "ContractRequestMessage": lambda: negotiation.initial_request(
        consumer_pid="urn:uuid:c", offer=OFFER, callback_address="https://c.example/cb"
    ),
    "ContractRequestMessage (counter)": lambda: negotiation.counter_request(PN, OFFER),
    "ContractOfferMessage": lambda: negotiation.initial_offer(
        provider_pid="urn:uuid:p", offer=OFFER, callback_address="https://p.example/cb"
    ),
    "ContractOfferMessage (counter)": lambda: negotiation.counter_offer(PN, OFFER),
    "ContractAgreementMessage": lambda: negotiation.agree(PN, AGREEMENT),
    "ContractAgreementVerificationMessage": lambda: negotiation.verify(PN),
    "ContractNegotiationEventMessage ACCEPTED": lambda: negotiation.accept(PN),
    "ContractNegotiationEventMessage FINALIZED": lambda: negotiation.finalize(PN),
    "ContractNegotiationTerminationMessage": lambda: negotiation.terminate(PN, REASON),
    "ContractNegotiation": lambda: PN.ack(),
    "ContractNegotiationError": lambda: ProtocolError(
        Area.NEGOTIATION, 400, ErrorCode.ILLEGAL_TRANSITION, "no", consumer_pid="urn:uuid:c"
    ).body(),
    "TransferRequestMessage": lambda: transfer.request(
        consumer_pid="urn:uuid:c",
        agreement_id="urn:a",
        format="HttpData-PUSH",
        callback_address="https://c.example/cb",
        data_address=EDR,
    ),
    "TransferStartMessage": lambda: transfer.start(PT, EDR),
    "TransferCompletionMessage": lambda: transfer.complete(PT),
    "TransferSuspensionMessage": lambda: transfer.suspend(PT, REASON),
    "TransferTerminationMessage": lambda: transfer.terminate(PT, REASON),
    "TransferProcess": lambda: PT.ack(),
    "TransferError": lambda: ProtocolError(
        Area.TRANSFER, 404, ErrorCode.UNKNOWN_PROCESS, "no such process"
    ).body(),
}


def test_every_message_type_is_built_here() -> None:
    built = {factory().type for factory in BUILT.values()}
    assert built == set(m.MESSAGE_TYPES)


@pytest.mark.parametrize("name", list(BUILT))
def test_built_message_validates_against_the_official_schema_and_parses_back(name: str) -> None:
    message = BUILT[name]()
    document = message.to_json()
    assert document["@context"] == [m.DSP_CONTEXT]
    assert list(document)[:2] == ["@context", "@type"] or list(document)[1] == "@id"
    assert schemas.schema_errors(document, message.type) == []
    assert m.parse_message(document) == message
    assert m.parse_json(message.to_json_text()) == message


def test_a_foreign_context_beside_the_dsp_one_is_kept() -> None:
    cx = "https://w3id.org/catenax/2025/9/policy/context.jsonld"
    document = {**negotiation.verify(PN).to_json(), "@context": [m.DSP_CONTEXT, cx]}
    assert m.parse_message(document).to_json()["@context"] == [m.DSP_CONTEXT, cx]


def test_unknown_properties_survive_a_round_trip() -> None:
    document = {**negotiation.verify(PN).to_json(), "@id": "urn:uuid:msg-1", "note": {"x": 1}}
    assert m.parse_message(document).to_json() == document


# --- malformed input: typed errors -------------------------------------------------------------

VALID = {
    "@context": [m.DSP_CONTEXT],
    "@type": "ContractAgreementVerificationMessage",
    "providerPid": "urn:uuid:p",
    "consumerPid": "urn:uuid:c",
}


def with_(**changes: Any) -> dict[str, Any]:
    document = dict(VALID)
    for key, value in changes.items():
        key = {"context": "@context", "type": "@type"}.get(key, key)
        if value is ...:
            document.pop(key)
        else:
            document[key] = value
    return document


@pytest.mark.parametrize(
    ("document", "error"),
    [
        pytest.param([VALID], m.NotAnObjectError, id="not-an-object"),
        pytest.param(with_(context=...), m.MissingContextError, id="missing-context"),
        pytest.param(
            with_(context="https://w3id.org/dspace/2024/1/context.json"),
            m.WrongContextError,
            id="2024-1-context",
        ),
        pytest.param(
            with_(context=["https://w3id.org/dspace/2024/1/context.json"]),
            m.WrongContextError,
            id="2024-1-context-array",
        ),
        pytest.param(with_(context=m.DSP_CONTEXT), m.WrongContextError, id="context-not-array"),
        pytest.param(
            with_(context=["https://example.org/ctx"]), m.WrongContextError, id="other-context"
        ),
        pytest.param(
            with_(context=[m.DSP_CONTEXT, {"x": "y"}]), m.WrongContextError, id="inline-context"
        ),
        pytest.param(with_(type=...), m.MissingTypeError, id="missing-type"),
        pytest.param(with_(type="ContractRejectionMessage"), m.UnknownTypeError, id="unknown"),
        pytest.param(with_(type=["ContractRequestMessage"]), m.UnknownTypeError, id="type-list"),
        pytest.param(
            with_(type="dspace:ContractAgreementVerificationMessage"),
            m.UnknownTypeError,
            id="prefixed-2024-style-type",
        ),
        pytest.param(with_(consumerPid=42), m.SchemaViolationError, id="pid-not-string"),
        pytest.param(with_(providerPid=...), m.SchemaViolationError, id="pid-missing"),
    ],
)
def test_malformed_message_gives_a_typed_error(document: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        m.parse_message(document)
    assert isinstance(caught.value, m.MessageError)
    assert isinstance(caught.value, ValueError)


def test_unknown_type_error_names_the_type() -> None:
    with pytest.raises(m.UnknownTypeError) as caught:
        m.parse_message(with_(type="Nope"))
    assert caught.value.type_name == "Nope"
    assert caught.value.code is m.MessageErrorCode.UNKNOWN_TYPE


def test_schema_violations_name_the_json_path() -> None:
    with pytest.raises(m.SchemaViolationError) as caught:
        m.parse_message(with_(consumerPid=42))
    assert any(p.startswith("$.consumerPid:") for p in caught.value.problems)


def test_bad_json_text_is_a_typed_error() -> None:
    with pytest.raises(m.NotJsonError):
        m.parse_json(b"{not json")
    with pytest.raises(m.NotJsonError):
        m.parse_json(b"\xff\xfe")


def event(event_type: str) -> dict[str, Any]:
    return {**negotiation.accept(PN).to_json(), "eventType": event_type}


def request_doc(**changes: Any) -> dict[str, Any]:
    document = negotiation.initial_request(
        consumer_pid="urn:uuid:c", offer=OFFER, callback_address="https://c.example/cb"
    ).to_json()
    document.update(changes)
    return document


@pytest.mark.parametrize(
    ("document", "error"),
    [
        pytest.param(event("REJECTED"), m.SchemaViolationError, id="unknown-event-type"),
        pytest.param(
            request_doc(providerPid="urn:uuid:p"),
            m.SchemaViolationError,
            id="request-both-callback-and-providerPid",
        ),
        pytest.param(
            request_doc(offer={"@id": "o", "@type": "Offer", "target": "t"}),
            m.SchemaViolationError,
            id="offer-without-rules",
        ),
        pytest.param(
            request_doc(offer={"@id": "o", "@type": "Offer", "permission": [{"action": "use"}]}),
            m.ModelViolationError,
            id="offer-without-target (schema quirk: text MUST, schema optional)",
        ),
        pytest.param(
            request_doc(
                offer={
                    "@id": "o",
                    "@type": "Offer",
                    "target": "t",
                    "permission": [
                        {
                            "action": "use",
                            "constraint": [
                                {"leftOperand": "x", "operator": "eq", "rightOperand": 30}
                            ],
                        }
                    ],
                }
            ),
            m.SchemaViolationError,
            id="numeric-right-operand (schema quirk)",
        ),
        pytest.param(
            {
                **negotiation.agree(PN, AGREEMENT).to_json(),
                "agreement": {**AGREEMENT.to_json(), "timestamp": "on 2023-01-01T01:00:00Z!"},
            },
            m.ModelViolationError,
            id="agreement-timestamp-garbage-around-a-date (schema quirk: unanchored pattern)",
        ),
    ],
)
def test_field_level_violations_give_typed_errors(
    document: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        m.parse_message(document)


def test_the_unanchored_timestamp_pattern_is_a_real_schema_quirk() -> None:
    document = {
        **negotiation.agree(PN, AGREEMENT).to_json(),
        "agreement": {**AGREEMENT.to_json(), "timestamp": "on 2023-01-01T01:00:00Z!"},
    }
    assert schemas.schema_errors(document, "ContractAgreementMessage") == []


def test_parse_as_rejects_the_wrong_message_for_an_endpoint() -> None:
    document = negotiation.verify(PN).to_json()
    assert isinstance(
        m.parse_as(document, m.ContractAgreementVerificationMessage),
        m.ContractAgreementVerificationMessage,
    )
    with pytest.raises(m.UnexpectedTypeError):
        m.parse_as(document, m.ContractRequestMessage, m.ContractOfferMessage)


def test_building_a_message_without_the_dsp_context_fails() -> None:
    with pytest.raises(ValueError, match="@context"):
        m.ContractAgreementVerificationMessage(
            context=["https://example.org/ctx"], consumer_pid="c", provider_pid="p"
        )


def test_a_message_error_becomes_a_schema_valid_400_body() -> None:
    with pytest.raises(m.MessageError) as caught:
        m.parse_message(with_(consumerPid=42))
    error = ProtocolError.from_message_error(
        caught.value, Area.NEGOTIATION, provider_pid="urn:uuid:p"
    )
    assert error.status == 400
    assert error.code is ErrorCode.INVALID_MESSAGE
    body = error.body().to_json()
    assert body["consumerPid"] == ""  # schema quirk: both PIDs required even when unknown
    assert schemas.schema_errors(body, "ContractNegotiationError") == []
    assert any("$.consumerPid" in reason for reason in body["reason"])


# --- schema quirks are pinned: if upstream fixes them, these tests say the shim can go --------


def raw_validator(relative: str) -> Draft201909Validator:
    schema = json.loads((DATA / relative).read_text("utf-8"))
    return Draft201909Validator(schema, registry=schemas.registry())


def test_quirk_transfer_schemas_use_a_fragment_that_is_not_a_json_pointer() -> None:
    text = (DATA / "transfer/transfer-termination-message-schema.json").read_text("utf-8")
    assert "transfer-schema.json#definitions/" in text
    document = transfer.terminate(PT, REASON).to_json()
    with pytest.raises(Unresolvable):
        raw = raw_validator("transfer/transfer-termination-message-schema.json")
        list(raw.iter_errors(document))
    assert schemas.schema_errors(document, "TransferTerminationMessage") == []


@needs_shared
def test_quirk_the_spec_dataservice_example_breaks_its_own_endpoint_pattern() -> None:
    example = load(SHARED / "examples/common/dataservice-did-service.json")
    assert list(raw_validator("common/did-service-schema.json").iter_errors(example))
    assert schemas.schema_errors(example, "DidService") == []


def test_refs_to_unbundled_schemas_are_unresolvable_not_fetched() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$ref": "https://w3id.org/dspace/2025/1/nope/missing-schema.json",
    }
    with pytest.raises(Unresolvable):
        list(Draft201909Validator(schema, registry=schemas.registry()).iter_errors({}))


# --- termination reasons -------------------------------------------------------------------


def test_termination_reason_round_trips_through_the_wire_fields() -> None:
    code, reasons = REASON.to_wire()
    assert code == "policy"
    assert reasons == ["purpose not offered", "constraint: cx-policy:UsagePurpose"]
    assert TerminationReason.from_wire(code, reasons) == REASON
    plain = TerminationReason(TerminationKind.TRANSPORT, None, "peer unreachable after 50 tries")
    assert TerminationReason.from_wire(*plain.to_wire()) == plain


def test_a_foreign_termination_code_is_kept_not_guessed() -> None:
    reason = TerminationReason.from_wire("99", ["License model does not fit."])
    assert reason == TerminationReason(
        TerminationKind.INTERNAL, None, "[99] License model does not fit."
    )
    assert TerminationReason.from_wire(None, None) is None
    assert TerminationReason.from_wire("1", [{"message": "x"}]) == TerminationReason(
        TerminationKind.INTERNAL, None, '[1] {"message": "x"}'
    )


def iter_all_nodes(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from iter_all_nodes(item)
    elif isinstance(value, list):
        for item in value:
            yield from iter_all_nodes(item)


def test_typed_nodes_get_their_type_so_scoped_terms_keep_their_meaning() -> None:
    """Schema quirk: Dataset/Distribution/catalog Offer need no @type in the schema, but their
    terms are scoped to that type in the context; we always emit it."""
    document = m.RootDataset(**DATASET.model_dump(by_alias=True)).to_json()
    scoped = ("hasPolicy", "accessService", "permission")
    typed = [
        node.get("@type")
        for node in iter_all_nodes(document)
        if any(term in node for term in scoped)
    ]
    assert typed == ["Dataset", "Offer", "Distribution"]
