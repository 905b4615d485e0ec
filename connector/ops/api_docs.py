"""The description of one HTTP operation, written beside its handler with ``@api_operation``.

Method and path are *not* part of it: they come from the app's router when the OpenAPI
document is built (``connector.ops.openapi``), so a route cannot be documented under a path it
is not served at. What the decorator adds is what the router cannot know: a summary, the
pydantic models of the request body and of each answer, the query parameters. Tests hold the
rest in place: every ``/management`` route must carry a description, and real answers of a
running node must validate against the documented models (which forbid unknown fields, so a
new field in a view fails until the model names it).

Put ``@api_operation`` outermost (above ``@require_operator``): the attribute is read from
the function the router calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

ATTRIBUTE = "__bpc_api__"
JSON = "application/json"
#: A raw answer whose media type is the data's own (the data plane's bytes, received data).
ANY_MEDIA = "*/*"

F = TypeVar("F", bound=Callable[..., Any])
Auth = Literal["operator", "metrics"]


@dataclass(frozen=True, slots=True)
class Answer:
    """One successful answer: its status, its body model (``None``: no body), media type."""

    status: int
    model: type[BaseModel] | None = None
    description: str = ""
    media_type: str = JSON


@dataclass(frozen=True, slots=True)
class Param:
    """A query (or path) parameter; path parameters the route has are added on their own."""

    name: str
    description: str
    where: Literal["query", "path"] = "query"
    required: bool = False
    enum: tuple[str, ...] = ()
    type: Literal["string", "integer", "boolean"] = "string"


@dataclass(frozen=True, slots=True)
class ApiOperation:
    """What ``@api_operation`` records about a handler."""

    summary: str
    tag: str
    answers: tuple[Answer, ...]
    body: type[BaseModel] | None = None
    body_required: bool = True
    body_media: tuple[str, ...] = (JSON,)
    params: tuple[Param, ...] = ()
    #: Problem statuses beyond those the builder infers (401 with auth, 404 with a path
    #: parameter, 400 with a body or query, 413 with a body, 500 always).
    problems: tuple[int, ...] = ()
    auth: Auth | None = "operator"
    description: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)


#: ``?limit=&after=`` of every list (``connector.management.paging``).
PAGING = (
    Param("limit", "page size, 1 to 500 (default 100)", type="integer"),
    Param("after", "the previous page's ``next`` cursor"),
)


def api_operation(
    *, summary: str, tag: str, answers: tuple[Answer, ...],
    body: type[BaseModel] | None = None, body_required: bool = True,
    body_media: tuple[str, ...] = (JSON,), params: tuple[Param, ...] = (),
    problems: tuple[int, ...] = (), auth: Auth | None = "operator",
    description: str | None = None,
) -> Callable[[F], F]:
    """Describe the decorated handler for the OpenAPI document (see the module docstring)."""
    operation = ApiOperation(summary=summary, tag=tag, answers=answers, body=body,
                             body_required=body_required, body_media=body_media,
                             params=params, problems=problems, auth=auth,
                             description=description)

    def describe(handler: F) -> F:
        setattr(handler, ATTRIBUTE, operation)
        return handler

    return describe


def operation_of(handler: object) -> ApiOperation | None:
    """The description a handler carries, if any."""
    found = getattr(handler, ATTRIBUTE, None)
    return found if isinstance(found, ApiOperation) else None


__all__ = ["ANY_MEDIA", "JSON", "PAGING", "Answer", "ApiOperation", "Param", "api_operation",
           "operation_of"]
