"""Shape checks shared by issuer and verifier: which data model a document uses, its issuer."""

from __future__ import annotations

from typing import Any, Literal

from credentials.errors import MalformedDocument
from vocab import CREDENTIALS_V1, CREDENTIALS_V2

DataModel = Literal["1.1", "2.0"]


def contexts_of(document: dict[str, Any]) -> list[Any]:
    contexts = document.get("@context")
    if isinstance(contexts, str):
        return [contexts]
    if isinstance(contexts, list) and contexts:
        return contexts
    raise MalformedDocument("@context must be a non-empty list", path="@context")


def data_model(document: dict[str, Any]) -> DataModel:
    """VCDM version, from the first context as both data models require."""
    first = contexts_of(document)[0]
    if first == CREDENTIALS_V2:
        return "2.0"
    if first == CREDENTIALS_V1:
        return "1.1"
    raise MalformedDocument(
        f"the first @context must be {CREDENTIALS_V2} or {CREDENTIALS_V1}, not {first!r}",
        path="@context[0]",
    )


def types_of(document: dict[str, Any]) -> list[str]:
    value = document.get("type")
    types = [value] if isinstance(value, str) else value
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise MalformedDocument("type must be a string or a list of strings", path="type")
    return types


def issuer_id(credential: dict[str, Any]) -> str:
    issuer = credential.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    if not isinstance(issuer, str) or not issuer:
        raise MalformedDocument("credential has no issuer id", path="issuer")
    return issuer


def check_credential_shape(credential: Any) -> DataModel:
    if not isinstance(credential, dict):
        raise MalformedDocument("a credential must be a JSON object")
    model = data_model(credential)
    if "VerifiableCredential" not in types_of(credential):
        raise MalformedDocument("type must include VerifiableCredential", path="type")
    issuer_id(credential)
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict | list) or not subject:
        raise MalformedDocument("credential has no credentialSubject", path="credentialSubject")
    if model == "1.1" and "issuanceDate" not in credential:
        raise MalformedDocument("a VCDM 1.1 credential needs issuanceDate", path="issuanceDate")
    return model
