"""Problem details (RFC 9457): the one shape of every error the node answers with.

A client of any of the node's APIs — the VC-API, the management API, the Dataspace Protocol —
gets ``application/problem+json`` with a stable ``type`` URI to branch on, a ``title``, the
``status`` and a ``detail`` for people, plus typed extension members where they help (the
failing fields of a request, the typed verification problems). ``problem_middleware`` turns
every aiohttp ``HTTPException`` into that shape and an unexpected exception into a 500 that
says nothing about the code (it is logged with an id the body repeats). Bad input is the
route's job: routes raise ``ProblemError`` with a 4xx themselves, so a 500 always means a bug.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

PROBLEM_JSON = "application/problem+json"
#: Problem ``type`` URIs are this plus a slug; the battery context lives under the same name.
PROBLEM_BASE = "https://w3id.org/battery-passport-connector/problems#"

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)


class FieldError(TypedDict):
    """One invalid field of a request body (``errors`` extension of ``invalid-request``)."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class ProblemDetails:
    """An RFC 9457 problem; ``slug`` becomes the ``type`` URI, ``extensions`` extra members."""

    status: int
    slug: str
    title: str
    detail: str | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type_uri, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        for name, value in self.extensions.items():
            if name not in body:  # extensions never overwrite the standard members
                body[name] = value
        return body

    def response(self, headers: Mapping[str, str] | None = None) -> web.Response:
        return web.json_response(
            self.to_json(), status=self.status, content_type=PROBLEM_JSON, headers=headers
        )


class ProblemError(Exception):
    """Raised by routes (and auth) to answer with a problem; the middleware renders it."""

    def __init__(self, problem: ProblemDetails, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(problem.detail or problem.title)
        self.problem = problem
        self.headers = dict(headers or {})


# --- the problems the node itself defines --------------------------------------------------------


def invalid_request(errors: Sequence[FieldError]) -> ProblemError:
    """400 naming every field of the body that is missing or wrong."""
    detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"]
                       for e in errors)
    return ProblemError(ProblemDetails(
        400, "invalid-request", "The request body is not valid", detail,
        {"errors": list(errors)},
    ))


def malformed_json(detail: str) -> ProblemError:
    return ProblemError(ProblemDetails(400, "malformed-json", "The request body is not JSON",
                                       detail))


def body_too_large(max_bytes: int) -> ProblemDetails:
    return ProblemDetails(
        413, "body-too-large", "The request body is too large",
        f"request bodies are limited to {max_bytes} bytes", {"maxBodyBytes": max_bytes},
    )


def internal_error(error_id: str) -> ProblemDetails:
    return ProblemDetails(
        500, "internal-error", "Internal server error",
        f"the node failed unexpectedly; its log has the details under error id {error_id}",
        {"errorId": error_id},
    )


# --- reading request bodies -------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 400 problems for anything else, 413 past the size limit.

    ``NaN`` and ``Infinity`` are refused: they are not JSON and no signature over them
    would verify elsewhere.
    """
    raw = await request.read()  # raises HTTPRequestEntityTooLarge past client_max_size
    if not raw.strip():
        raise malformed_json("the request has no body; send a JSON object")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise malformed_json("the body is not UTF-8") from None
    except ValueError as exc:
        raise malformed_json(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise malformed_json(f"the body must be a JSON object, not {type(data).__name__}")
    try:
        # JSON text may escape an unpaired surrogate (\ud800); I-JSON forbids it, and no
        # canonical form (hence no signature) can be computed over it.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise malformed_json("the body holds an unpaired UTF-16 surrogate (not I-JSON)") from None
    return data


def parse_body(model: type[M], data: dict[str, Any]) -> M:
    """``data`` validated as ``model``; a 400 problem naming each bad field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(field_errors(exc)) from None


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as ``{field, message}`` with JSON paths (``options.cryptosuite``)."""
    errors: list[FieldError] = []
    for error in exc.errors():
        path = ""
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "required field is missing"
        errors.append(FieldError(field=path, message=message))
    return errors


# --- the middleware ---------------------------------------------------------------------------


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    status = exc.status
    headers = {k: v for k, v in exc.headers.items()
               if k.lower() not in ("content-type", "content-length")}
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return body_too_large(request.client_max_size).response(headers)
    default_text = f"{status}: {exc.reason}"
    detail = exc.text if exc.text and exc.text != default_text else None
    slug = {
        404: "not-found",
        405: "method-not-allowed",
        401: "unauthorized",
        403: "forbidden",
        415: "unsupported-media-type",
    }.get(status, f"http-{status}")
    if status == 404 and detail is None:
        detail = f"nothing at {request.path}"
    elif status == 405 and detail is None:
        allowed = headers.get("Allow", "")
        detail = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
    return ProblemDetails(status, slug, exc.reason, detail).response(headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as problem JSON; no stack trace ever leaves the process."""
    try:
        return await handler(request)
    except ProblemError as exc:
        return exc.problem.response(exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like are answers, not errors
            raise
        return _from_http_exception(request, exc)
    except Exception:
        error_id = secrets.token_hex(8)
        logger.exception("unhandled error %s in %s %s", error_id, request.method, request.path)
        return internal_error(error_id).response()
