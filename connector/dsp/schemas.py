"""Offline validation against the official DSP 2025-1 JSON Schemas.

The schemas are the protocol's own statement of the compact wire form, so every inbound message
is checked against them before it reaches a model, and the tests check every outbound one. They
are bundled under ``data/`` (see ``data/ORIGIN.md``) and registered under their ``$id``; a
``$ref`` to anything else is unresolvable, so validation can never trigger a network fetch.

Two defects of the published files are repaired in memory here, never in the files:

* three transfer schemas ``$ref`` ``transfer-schema.json#definitions/…`` — not a JSON Pointer
  (``#/definitions/…``). Java validators shrug; Python's ``referencing`` refuses it.
* ``did-service-schema.json`` pins ``serviceEndpoint`` to ``…/catalog$``, which the spec's own
  DataService example (``…/.well-known/dspace-version``) violates; the pattern is dropped.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft201909Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT201909

BASE_URI = "https://w3id.org/dspace/2025/1/"

#: Schema file (relative to ``data/`` and to ``BASE_URI``) for each document kind. The key is the
#: compact ``@type`` for messages; ``VersionResponse`` and ``DidService`` carry no ``@type``.
SCHEMA_FILES: dict[str, str] = {
    "CatalogRequestMessage": "catalog/catalog-request-message-schema.json",
    "DatasetRequestMessage": "catalog/dataset-request-message-schema.json",
    "Catalog": "catalog/catalog-schema.json",
    "Dataset": "catalog/dataset-schema.json",
    "CatalogError": "catalog/catalog-error-schema.json",
    "ContractRequestMessage": "negotiation/contract-request-message-schema.json",
    "ContractOfferMessage": "negotiation/contract-offer-message-schema.json",
    "ContractAgreementMessage": "negotiation/contract-agreement-message-schema.json",
    "ContractAgreementVerificationMessage":
        "negotiation/contract-agreement-verification-message-schema.json",
    "ContractNegotiationEventMessage": "negotiation/contract-negotiation-event-message-schema.json",
    "ContractNegotiationTerminationMessage":
        "negotiation/contract-negotiation-termination-message-schema.json",
    "ContractNegotiation": "negotiation/contract-negotiation-schema.json",
    "ContractNegotiationError": "negotiation/contract-negotiation-error-schema.json",
    "TransferRequestMessage": "transfer/transfer-request-message-schema.json",
    "TransferStartMessage": "transfer/transfer-start-message-schema.json",
    "TransferCompletionMessage": "transfer/transfer-completion-message-schema.json",
    "TransferSuspensionMessage": "transfer/transfer-suspension-message-schema.json",
    "TransferTerminationMessage": "transfer/transfer-termination-message-schema.json",
    "TransferProcess": "transfer/transfer-process-schema.json",
    "TransferError": "transfer/transfer-error-schema.json",
    "VersionResponse": "common/protocol-version-schema.json",
    "DidService": "common/did-service-schema.json",
}

#: Schemas only ever reached through ``$ref``.
_SUPPORT_FILES = (
    "common/context-schema.json",
    "negotiation/contract-schema.json",
    "transfer/transfer-schema.json",
    "transfer/data-address-schema.json",
)

_DATA = resources.files("connector.dsp") / "data"


def data_text(relative: str) -> str:
    """Text of a bundled file under ``data/`` (schemas, contexts, ORIGIN.md)."""
    return (_DATA / relative).read_text("utf-8")


def _fix_fragment_refs(node: Any) -> Any:
    """Rewrite ``#definitions/`` refs to ``#/definitions/`` (transfer schemas, see module doc)."""
    if isinstance(node, dict):
        fixed = {key: _fix_fragment_refs(value) for key, value in node.items()}
        ref = fixed.get("$ref")
        if isinstance(ref, str) and "#definitions/" in ref:
            fixed["$ref"] = ref.replace("#definitions/", "#/definitions/")
        return fixed
    if isinstance(node, list):
        return [_fix_fragment_refs(item) for item in node]
    return node


def _drop_did_endpoint_pattern(schema: dict[str, Any]) -> dict[str, Any]:
    """Remove the ``…/catalog$`` pattern the spec's own DataService example violates."""
    endpoint = schema["definitions"]["DidService"]["properties"]["serviceEndpoint"]
    endpoint.pop("pattern", None)
    return schema


def load_schema(relative: str) -> dict[str, Any]:
    """One bundled schema as the validator sees it, i.e. with the in-memory repairs applied."""
    schema: dict[str, Any] = _fix_fragment_refs(json.loads(data_text(relative)))
    if relative == SCHEMA_FILES["DidService"]:
        schema = _drop_did_endpoint_pattern(schema)
    expected_id = BASE_URI + relative
    if schema.get("$id") != expected_id:  # the layout rule the registry relies on
        raise RuntimeError(f"bundled schema {relative} has $id {schema.get('$id')!r}")
    return schema


@cache
def registry() -> Registry[Any]:
    """Every bundled schema under its ``$id``; nothing else resolves (no retrieval hook)."""
    files = sorted({*SCHEMA_FILES.values(), *_SUPPORT_FILES})
    pairs = [
        (BASE_URI + relative, Resource(load_schema(relative), specification=DRAFT201909))
        for relative in files
    ]
    return Registry().with_resources(pairs).crawl()


@cache
def validator(kind: str) -> Draft201909Validator:
    """Validator for one document kind (a key of ``SCHEMA_FILES``)."""
    relative = SCHEMA_FILES[kind]
    schema = registry().contents(BASE_URI + relative)
    return Draft201909Validator(schema, registry=registry())


def _bundled(uri: str) -> Any:
    """The retriever of the fast validators: bundled schemas only, never the network."""
    relative = uri.removeprefix(BASE_URI)
    if uri == relative or relative not in {*SCHEMA_FILES.values(), *_SUPPORT_FILES}:
        raise ValueError(f"{uri} is not a bundled DSP schema")
    return load_schema(relative)


@cache
def fast_validator(kind: str) -> jsonschema_rs.Draft201909Validator:
    """The same schema compiled by jsonschema-rs: a yes/no in about a microsecond, where the
    reference validator takes ~0.2 ms on a valid message (measured on every DSP message)."""
    relative = SCHEMA_FILES[kind]
    return jsonschema_rs.Draft201909Validator(load_schema(relative), retriever=_bundled)


def schema_errors(document: Any, kind: str) -> list[str]:
    """Human-readable schema violations of ``document`` as a ``kind``; empty when it is valid.

    Each entry names the JSON path so a peer can find its mistake in the error body we send.
    Valid documents (nearly all) are recognised by ``fast_validator``; the errors of an invalid
    one come from the reference validator (``jsonschema``), whose messages the error bodies
    have always carried. ``tests/connector/test_dsp_schemas.py`` checks the two agree.
    """
    if fast_validator(kind).is_valid(document):
        return []
    found = validator(kind).iter_errors(document)
    return sorted(f"{error.json_path}: {error.message}" for error in found)
