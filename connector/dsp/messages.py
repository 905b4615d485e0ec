"""DSP 2025-1 messages as pydantic models of their compact JSON-LD form.

DSP 2025-1 messages are JSON-LD designed to be processed as plain JSON: the protected,
type-scoped context ``https://w3id.org/dspace/2025/1/context.jsonld`` fixes what every compact
key means, and the official JSON Schemas validate exactly that compact form. So the hot path
never runs a JSON-LD processor: ``parse_message`` checks the envelope (``@context``, ``@type``),
the official schema for the ``@type``, then the model, and ``Message.to_json()`` emits the same
compact form. Expansion is only needed when a foreign context joins the DSP one (e.g. the
Catena-X policy context) and a policy must be read as IRIs; ``connector.dsp.jsonld`` has the
offline loader for that.

Unknown properties are kept (``extra="allow"``): the spec lets servers process extra DCAT/DCT
terms, and a re-serialised message must be the message that was received — the state machines
fingerprint it to recognise retries.

Where the models are stricter than the schemas, the text of the specification says MUST and the
schema does not (each case is marked "schema quirk" below): an offer in a contract request must
name its ``target``; an agreement ``timestamp``, when present, must be a whole ``xsd:dateTime``
(the schema's pattern is unanchored); ``Dataset``/``Distribution``/catalog ``Offer`` get their
``@type`` by default, because their terms are scoped to that type in the context and mean nothing
without it.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from connector.dsp.schemas import schema_errors

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
"""The one JSON-LD context every DSP 2025-1 message must list."""

ODRL_PROFILE_CONTEXT = "https://w3id.org/dspace/2025/1/odrl-profile.jsonld"
"""Imported by the DSP context inside policies; never listed in ``@context`` itself."""

DSP_2024_CONTEXT = "https://w3id.org/dspace/2024/1/context.json"
"""The previous version's context: recognised only to say clearly that it is not spoken here."""


# --------------------------------------------------------------------------------------------
# Parse errors: a small hierarchy with ValueError as second base (pydid style), so a binding can
# catch ``MessageError`` and answer 400, and tests can assert the precise kind.


class MessageErrorCode(StrEnum):
    NOT_JSON = "not-json"
    NOT_AN_OBJECT = "not-an-object"
    MISSING_CONTEXT = "missing-context"
    WRONG_CONTEXT = "wrong-context"
    MISSING_TYPE = "missing-type"
    UNKNOWN_TYPE = "unknown-type"
    UNEXPECTED_TYPE = "unexpected-type"
    SCHEMA_VIOLATION = "schema-violation"
    MODEL_VIOLATION = "model-violation"


class MessageError(ValueError):
    """An inbound document is not an acceptable DSP 2025-1 message (HTTP 400)."""

    code: ClassVar[MessageErrorCode]

    def __init__(self, detail: str, *, problems: list[str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problems: list[str] = problems or []

    @property
    def reasons(self) -> list[str]:
        """What goes into the ``reason`` array of the error message we answer with."""
        return [self.detail, *self.problems]


class NotJsonError(MessageError):
    code = MessageErrorCode.NOT_JSON


class NotAnObjectError(MessageError):
    code = MessageErrorCode.NOT_AN_OBJECT


class MissingContextError(MessageError):
    code = MessageErrorCode.MISSING_CONTEXT


class WrongContextError(MessageError):
    code = MessageErrorCode.WRONG_CONTEXT


class MissingTypeError(MessageError):
    code = MessageErrorCode.MISSING_TYPE


class UnknownTypeError(MessageError):
    """``@type`` names no DSP 2025-1 message."""

    code = MessageErrorCode.UNKNOWN_TYPE

    def __init__(self, detail: str, *, type_name: object) -> None:
        super().__init__(detail)
        self.type_name = type_name


class UnexpectedTypeError(MessageError):
    """A valid message, but not the one the endpoint accepts."""

    code = MessageErrorCode.UNEXPECTED_TYPE


class SchemaViolationError(MessageError):
    code = MessageErrorCode.SCHEMA_VIOLATION


class ModelViolationError(MessageError):
    code = MessageErrorCode.MODEL_VIOLATION


# --------------------------------------------------------------------------------------------
# Wire enumerations


class NegotiationState(StrEnum):
    """Contract negotiation states; the compact value is a term of the DSP context."""

    REQUESTED = "REQUESTED"
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    AGREED = "AGREED"
    VERIFIED = "VERIFIED"
    FINALIZED = "FINALIZED"
    TERMINATED = "TERMINATED"


class TransferState(StrEnum):
    """Transfer process states; the compact value is a term of the DSP context."""

    REQUESTED = "REQUESTED"
    STARTED = "STARTED"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    TERMINATED = "TERMINATED"


class EventType(StrEnum):
    ACCEPTED = "ACCEPTED"
    FINALIZED = "FINALIZED"


class Operator(StrEnum):
    """The ODRL operators the DSP policy schema admits."""

    EQ = "eq"
    GT = "gt"
    GTEQ = "gteq"
    LT = "lt"
    LTEQ = "lteq"
    NEQ = "neq"
    HAS_PART = "hasPart"
    IS_A = "isA"
    IS_ALL_OF = "isAllOf"
    IS_ANY_OF = "isAnyOf"
    IS_NONE_OF = "isNoneOf"
    IS_PART_OF = "isPartOf"
    TERM_LTEQ = "term-lteq"


# --------------------------------------------------------------------------------------------
# Model plumbing


class Node(BaseModel):
    """Any JSON-LD node of a DSP message: immutable, keeps unknown keys, speaks compact keys."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    def to_json(self) -> dict[str, Any]:
        """The compact JSON form (absent optionals omitted, unknown keys kept).

        Keywords come first in every node, as in the spec's examples, so our messages read the
        same way as the ones a peer sends.
        """
        data: dict[str, Any] = _keywords_first(
            self.model_dump(mode="json", by_alias=True, exclude_none=True)
        )
        return data


_KEYWORDS = ("@context", "@id", "@type")


def _keywords_first(value: Any) -> Any:
    if isinstance(value, dict):
        front = {key: _keywords_first(value[key]) for key in _KEYWORDS if key in value}
        rest = {k: _keywords_first(v) for k, v in value.items() if k not in _KEYWORDS}
        return {**front, **rest}
    if isinstance(value, list):
        return [_keywords_first(item) for item in value]
    return value


def _one_or_more(items: list[Any] | None, name: str) -> list[Any] | None:
    if items is not None and not items:
        raise ValueError(f"{name} must not be empty when present")
    return items


# --- policies (negotiation/contract-schema.json) --------------------------------------------


class AtomicConstraint(Node):
    left_operand: str = Field(alias="leftOperand")
    operator: Operator
    # Schema quirk: numbers and booleans are not allowed (string, object or array only), so a
    # day count must travel as "30", not 30.
    right_operand: str | dict[str, Any] | list[Any] = Field(alias="rightOperand")


_LOGICAL_KEYS = ("and", "or", "xone", "andSequence")


class LogicalConstraint(Node):
    and_: list[Constraint] | None = Field(None, alias="and")
    or_: list[Constraint] | None = Field(None, alias="or")
    xone: list[Constraint] | None = None
    and_sequence: list[Constraint] | None = Field(None, alias="andSequence")

    @model_validator(mode="after")
    def _exactly_one_operator(self) -> LogicalConstraint:
        present = [v for v in (self.and_, self.or_, self.xone, self.and_sequence) if v is not None]
        if len(present) != 1:
            raise ValueError("a logical constraint has exactly one of and, or, xone, andSequence")
        return self


def _constraint_kind(value: Any) -> str:
    if isinstance(value, LogicalConstraint):
        return "logical"
    if isinstance(value, AtomicConstraint):
        return "atomic"
    if isinstance(value, dict) and any(key in value for key in _LOGICAL_KEYS):
        return "logical"
    return "atomic"


Constraint = Annotated[
    Annotated[AtomicConstraint, Tag("atomic")] | Annotated[LogicalConstraint, Tag("logical")],
    Discriminator(_constraint_kind),
]


class Rule(Node):
    """A permission, prohibition or obligation (duty): an action under constraints."""

    action: str
    constraint: list[Constraint] | None = None


class _Policy(Node):
    id: str = Field(alias="@id")
    profile: str | list[str] | None = None
    permission: list[Rule] | None = None
    prohibition: list[Rule] | None = None
    obligation: list[Rule] | None = None

    @field_validator("permission", "prohibition", "obligation")
    @classmethod
    def _not_empty(cls, value: list[Rule] | None) -> list[Rule] | None:
        return _one_or_more(value, "a rule list")

    @model_validator(mode="after")
    def _has_a_rule(self) -> _Policy:
        if self.permission is None and self.prohibition is None:
            raise ValueError("a policy needs at least one permission or prohibition")
        return self


class Offer(_Policy):
    """An offer in a catalog (``hasPolicy``): its target is the enclosing dataset."""

    type: Literal["Offer"] = Field("Offer", alias="@type")

    @model_validator(mode="after")
    def _no_target(self) -> Offer:
        if (self.model_extra or {}).get("target") is not None:
            raise ValueError("an offer inside a dataset must not carry a target")
        return self


class MessageOffer(_Policy):
    """An offer inside a contract request or offer message."""

    type: Literal["Offer"] = Field("Offer", alias="@type")
    # Schema quirk: optional in the schema for requests, required for offers; the text says an
    # offer in a message MUST name its target, so the model requires it in both.
    target: str


_XSD_DATETIME = re.compile(
    r"-?([1-9][0-9]{3,}|0[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T(([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?|(24:00:00(\.0+)?))"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))?"
)


class Agreement(_Policy):
    type: Literal["Agreement"] = Field("Agreement", alias="@type")
    target: str
    assigner: str
    assignee: str
    timestamp: str | None = None

    @field_validator("timestamp")
    @classmethod
    def _whole_datetime(cls, value: str | None) -> str | None:
        # Schema quirk: the schema's xsd:dateTime pattern has no anchors, so "x2023-01-01T00:00:00"
        # passes it; here the whole string must be the date-time.
        if value is not None and not _XSD_DATETIME.fullmatch(value):
            raise ValueError(f"timestamp {value!r} is not an xsd:dateTime")
        return value


# --- catalog (catalog/*.json) ----------------------------------------------------------------


class DataService(Node):
    id: str = Field(alias="@id")
    type: Literal["DataService"] = Field(alias="@type")
    endpoint_url: str = Field(alias="endpointURL")
    serves_dataset: list[Dataset] | None = Field(None, alias="servesDataset")


class Distribution(Node):
    type: Literal["Distribution"] = Field("Distribution", alias="@type")
    format: str
    access_service: str | DataService = Field(alias="accessService")
    has_policy: list[Offer] | None = Field(None, alias="hasPolicy")


class Dataset(Node):
    id: str = Field(alias="@id")
    type: Literal["Dataset"] = Field("Dataset", alias="@type")
    has_policy: list[Offer] = Field(alias="hasPolicy", min_length=1)
    distribution: list[Distribution] = Field(min_length=1)


class Catalog(Node):
    """A catalog node; the root of a catalog response is ``RootCatalog``."""

    id: str = Field(alias="@id")
    type: Literal["Catalog"] = Field("Catalog", alias="@type")
    participant_id: str | None = Field(None, alias="participantId")
    dataset: list[Dataset] | None = None
    catalog: list[Catalog] | None = None
    service: list[DataService] | None = None
    distribution: list[Distribution] | None = None

    @model_validator(mode="after")
    def _no_policy(self) -> Catalog:
        if "hasPolicy" in (self.model_extra or {}):
            raise ValueError("a catalog must not carry hasPolicy")
        return self


# --- transfer data addresses (transfer/data-address-schema.json) -----------------------------


class EndpointProperty(Node):
    type: Literal["EndpointProperty"] = Field("EndpointProperty", alias="@type")
    name: str
    value: str


class DataAddress(Node):
    type: Literal["DataAddress"] = Field("DataAddress", alias="@type")
    endpoint_type: str = Field(alias="endpointType")
    endpoint: str | None = None
    endpoint_properties: list[EndpointProperty] | None = Field(
        None, alias="endpointProperties", min_length=1
    )


# --------------------------------------------------------------------------------------------
# Messages: everything that travels as a document of its own, with @context and @type.


class _Message(Node):
    context: list[str] = Field(default_factory=lambda: [DSP_CONTEXT], alias="@context")

    @field_validator("context")
    @classmethod
    def _speaks_2025_1(cls, value: list[str]) -> list[str]:
        if DSP_CONTEXT not in value:
            raise ValueError(f"@context must list {DSP_CONTEXT}")
        return value

    def to_json_text(self) -> str:
        """Compact JSON text, as sent on the wire."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))


class CatalogRequestMessage(_Message):
    type: Literal["CatalogRequestMessage"] = Field("CatalogRequestMessage", alias="@type")
    filter: list[Any] | None = None


class DatasetRequestMessage(_Message):
    type: Literal["DatasetRequestMessage"] = Field("DatasetRequestMessage", alias="@type")
    dataset: str


class RootCatalog(Catalog, _Message):
    """A catalog response: a catalog node with ``@context`` and the provider's participant id."""

    participant_id: str = Field(alias="participantId")


class RootDataset(Dataset, _Message):
    """A dataset response (``GET /catalog/datasets/:id``)."""


class CatalogError(_Message):
    type: Literal["CatalogError"] = Field("CatalogError", alias="@type")
    code: str | None = None
    reason: list[Any] | None = None


class ContractRequestMessage(_Message):
    """Consumer → provider. Initial (``callbackAddress``) or counter-offer (``providerPid``)."""

    type: Literal["ContractRequestMessage"] = Field("ContractRequestMessage", alias="@type")
    consumer_pid: str = Field(alias="consumerPid")
    provider_pid: str | None = Field(None, alias="providerPid")
    offer: MessageOffer
    callback_address: str | None = Field(None, alias="callbackAddress")

    @model_validator(mode="after")
    def _initial_xor_counter(self) -> ContractRequestMessage:
        if (self.callback_address is None) == (self.provider_pid is None):
            raise ValueError("exactly one of callbackAddress (initial) or providerPid is required")
        return self

    @property
    def is_initial(self) -> bool:
        return self.provider_pid is None


class ContractOfferMessage(_Message):
    """Provider → consumer. Initial (``callbackAddress``) or counter-offer (``consumerPid``)."""

    type: Literal["ContractOfferMessage"] = Field("ContractOfferMessage", alias="@type")
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str | None = Field(None, alias="consumerPid")
    offer: MessageOffer
    callback_address: str | None = Field(None, alias="callbackAddress")

    @model_validator(mode="after")
    def _initial_xor_counter(self) -> ContractOfferMessage:
        if (self.callback_address is None) == (self.consumer_pid is None):
            raise ValueError("exactly one of callbackAddress (initial) or consumerPid is required")
        return self

    @property
    def is_initial(self) -> bool:
        return self.consumer_pid is None


class ContractAgreementMessage(_Message):
    type: Literal["ContractAgreementMessage"] = Field("ContractAgreementMessage", alias="@type")
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")
    agreement: Agreement


class ContractAgreementVerificationMessage(_Message):
    type: Literal["ContractAgreementVerificationMessage"] = Field(
        "ContractAgreementVerificationMessage", alias="@type"
    )
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")


class ContractNegotiationEventMessage(_Message):
    type: Literal["ContractNegotiationEventMessage"] = Field(
        "ContractNegotiationEventMessage", alias="@type"
    )
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")
    event_type: EventType = Field(alias="eventType")


class ContractNegotiationTerminationMessage(_Message):
    type: Literal["ContractNegotiationTerminationMessage"] = Field(
        "ContractNegotiationTerminationMessage", alias="@type"
    )
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")
    code: str | None = None
    reason: list[Any] | None = Field(None, min_length=1)


class ContractNegotiation(_Message):
    """The negotiation's state as one side holds it (ACK body and ``GET`` answer)."""

    type: Literal["ContractNegotiation"] = Field("ContractNegotiation", alias="@type")
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")
    state: NegotiationState


class ContractNegotiationError(_Message):
    type: Literal["ContractNegotiationError"] = Field("ContractNegotiationError", alias="@type")
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")
    code: str | None = None
    reason: list[Any] | None = Field(None, min_length=1)


class TransferRequestMessage(_Message):
    type: Literal["TransferRequestMessage"] = Field("TransferRequestMessage", alias="@type")
    consumer_pid: str = Field(alias="consumerPid")
    agreement_id: str = Field(alias="agreementId")
    format: str
    callback_address: str = Field(alias="callbackAddress")
    data_address: DataAddress | None = Field(None, alias="dataAddress")


class TransferStartMessage(_Message):
    type: Literal["TransferStartMessage"] = Field("TransferStartMessage", alias="@type")
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")
    # Text: MUST for pull transfers. The message alone cannot tell pull from push, so the
    # schema's "optional" stands here; the transfer machine's caller knows the format.
    data_address: DataAddress | None = Field(None, alias="dataAddress")


class TransferCompletionMessage(_Message):
    type: Literal["TransferCompletionMessage"] = Field("TransferCompletionMessage", alias="@type")
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")


class TransferSuspensionMessage(_Message):
    type: Literal["TransferSuspensionMessage"] = Field("TransferSuspensionMessage", alias="@type")
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")
    code: str | None = None
    reason: list[Any] | None = Field(None, min_length=1)


class TransferTerminationMessage(_Message):
    type: Literal["TransferTerminationMessage"] = Field(
        "TransferTerminationMessage", alias="@type"
    )
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")
    code: str | None = None
    reason: list[Any] | None = Field(None, min_length=1)


class TransferProcess(_Message):
    """The transfer's state as one side holds it (ACK body and ``GET`` answer)."""

    type: Literal["TransferProcess"] = Field("TransferProcess", alias="@type")
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")
    state: TransferState


class TransferError(_Message):
    type: Literal["TransferError"] = Field("TransferError", alias="@type")
    provider_pid: str = Field(alias="providerPid")
    consumer_pid: str = Field(alias="consumerPid")
    code: str | None = None
    reason: list[Any] | None = Field(None, min_length=1)


Message = (
    CatalogRequestMessage
    | DatasetRequestMessage
    | RootCatalog
    | RootDataset
    | CatalogError
    | ContractRequestMessage
    | ContractOfferMessage
    | ContractAgreementMessage
    | ContractAgreementVerificationMessage
    | ContractNegotiationEventMessage
    | ContractNegotiationTerminationMessage
    | ContractNegotiation
    | ContractNegotiationError
    | TransferRequestMessage
    | TransferStartMessage
    | TransferCompletionMessage
    | TransferSuspensionMessage
    | TransferTerminationMessage
    | TransferProcess
    | TransferError
)
"""Every document with an ``@type`` that DSP 2025-1 sends."""

MESSAGE_TYPES: dict[str, type[Message]] = {
    "CatalogRequestMessage": CatalogRequestMessage,
    "DatasetRequestMessage": DatasetRequestMessage,
    "Catalog": RootCatalog,
    "Dataset": RootDataset,
    "CatalogError": CatalogError,
    "ContractRequestMessage": ContractRequestMessage,
    "ContractOfferMessage": ContractOfferMessage,
    "ContractAgreementMessage": ContractAgreementMessage,
    "ContractAgreementVerificationMessage": ContractAgreementVerificationMessage,
    "ContractNegotiationEventMessage": ContractNegotiationEventMessage,
    "ContractNegotiationTerminationMessage": ContractNegotiationTerminationMessage,
    "ContractNegotiation": ContractNegotiation,
    "ContractNegotiationError": ContractNegotiationError,
    "TransferRequestMessage": TransferRequestMessage,
    "TransferStartMessage": TransferStartMessage,
    "TransferCompletionMessage": TransferCompletionMessage,
    "TransferSuspensionMessage": TransferSuspensionMessage,
    "TransferTerminationMessage": TransferTerminationMessage,
    "TransferProcess": TransferProcess,
    "TransferError": TransferError,
}
"""``@type`` → model; the keys are also the schema names in ``connector.dsp.schemas``."""


# --- version metadata and DID services (common/*.json): no @context/@type of their own --------


class Auth(Node):
    protocol: str
    version: str
    profile: list[str] | None = None


class Version(Node):
    version: str
    path: str
    binding: Literal["HTTPS"]
    identifier_type: str | None = Field(None, alias="identifierType")
    service_id: str | None = Field(None, alias="serviceId")
    auth: Auth | None = None


class VersionResponse(Node):
    """``GET /.well-known/dspace-version``. Plain JSON in 2025-1: no ``@context``."""

    protocol_versions: list[Version] = Field(alias="protocolVersions", min_length=1)


class DidService(Node):
    """A ``CatalogService``/``DataService`` entry of a DID document (its keys are ``id``/``type``).

    Schema quirk: the official schema pins ``serviceEndpoint`` to ``…/catalog$`` while the spec's
    own DataService example ends in ``/.well-known/dspace-version``; neither is enforced.
    """

    context: list[str] | None = Field(None, alias="@context")
    id: str
    type: Literal["DataService", "CatalogService"]
    service_endpoint: str = Field(alias="serviceEndpoint")


# --------------------------------------------------------------------------------------------
# Parsing


M = TypeVar("M", bound=Message)
N = TypeVar("N", bound=Node)


def _check_context(document: dict[str, Any]) -> None:
    if "@context" not in document:
        raise MissingContextError(f"a DSP message needs an @context listing {DSP_CONTEXT}")
    context = document["@context"]
    if context == DSP_2024_CONTEXT or (isinstance(context, list) and DSP_2024_CONTEXT in context):
        raise WrongContextError(
            "this is a DSP 2024-1 message; this endpoint speaks DSP 2025-1 "
            f"(@context [{DSP_CONTEXT!r}])"
        )
    # JSON-LD would accept a bare string; the 2025-1 schema wants an array, and so do we.
    if not isinstance(context, list) or not all(isinstance(item, str) for item in context):
        raise WrongContextError(
            f"@context must be an array of context URLs containing {DSP_CONTEXT}"
        )
    if DSP_CONTEXT not in context:
        raise WrongContextError(f"@context does not list {DSP_CONTEXT}")


def _validate_model(cls: type[N], document: dict[str, Any], kind: str) -> N:
    problems = schema_errors(document, kind)
    if problems:
        raise SchemaViolationError(f"not a valid {kind}", problems=problems)
    try:
        return cls.model_validate(document)
    except ValidationError as exc:
        details = [
            f"$.{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False)
        ]
        raise ModelViolationError(f"not a valid {kind}", problems=details) from exc


def parse_message(document: object) -> Message:
    """Validate a decoded JSON document and return its model, dispatching on ``@type``.

    Raises a ``MessageError`` subclass naming what is wrong: missing/wrong ``@context``,
    missing/unknown ``@type``, schema violations (with JSON paths) or model violations.
    """
    if not isinstance(document, dict):
        raise NotAnObjectError("a DSP message is a JSON object")
    _check_context(document)
    if "@type" not in document:
        raise MissingTypeError("a DSP message needs an @type")
    type_name = document["@type"]
    cls = MESSAGE_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise UnknownTypeError(
            f"@type {type_name!r} is not a DSP 2025-1 message type", type_name=type_name
        )
    return _validate_model(cls, document, type_name)


def parse_as(document: object, *expected: type[M]) -> M:
    """``parse_message``, then insist on one of the types an endpoint accepts."""
    message = parse_message(document)
    if not isinstance(message, expected):
        names = ", ".join(cls.model_fields["type"].default for cls in expected)
        raise UnexpectedTypeError(f"expected {names}, got {message.type}")
    return message


def parse_json(raw: bytes | str) -> Message:
    """Decode JSON text and ``parse_message`` it; undecodable input is a ``NotJsonError``."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotJsonError(f"the body is not JSON: {exc}") from exc
    return parse_message(document)


def parse_version_response(document: object) -> VersionResponse:
    """Validate a ``/.well-known/dspace-version`` answer (plain JSON, no ``@context``)."""
    if not isinstance(document, dict):
        raise NotAnObjectError("a version response is a JSON object")
    return _validate_model(VersionResponse, document, "VersionResponse")


def parse_did_service(document: object) -> DidService:
    """Validate a DSP service entry of a DID document."""
    if not isinstance(document, dict):
        raise NotAnObjectError("a DID service entry is a JSON object")
    return _validate_model(DidService, document, "DidService")


for _model in (LogicalConstraint, DataService, Catalog, RootCatalog):
    _model.model_rebuild()
