"""``GET /passport/{id}``: the passport page for people (HTML) and machines (JSON), its QR code
and its access-request pages.

Content negotiation: ``?format=json`` or ``?format=html`` decide; without it, JSON when the
``Accept`` header ranks ``application/json`` above ``text/html`` (a browser asks for HTML
first, ``curl -H 'Accept: application/json'`` for JSON). An unknown battery is a 404 page for
people and an RFC 9457 problem for machines; an unknown ``format`` is a 400 problem.
"""

from __future__ import annotations

import json

from aiohttp import web

from connector.problems import PROBLEM_JSON, ProblemDetails, ProblemError

from .identifiers import UnknownReference, battery_did
from .loading import load_view, verification_ctx
from .qr import qr_png, qr_svg
from .render import access_html, not_found_html, passport_html, security_headers
from .view import PassportView

HTML = "text/html"
JSON = "application/json"
_FORMATS = {"html": HTML, "json": JSON}
#: QR codes never change for a battery (the URL derives from the DID and public_base_url).
_QR_CACHE = "public, max-age=86400"


def _quality(accept: str, wanted: str) -> float:
    """The q-value ``accept`` gives ``wanted`` (exact type, ``type/*`` or ``*/*``)."""
    best, best_rank = 0.0, -1
    major = wanted.split("/", 1)[0]
    for item in accept.split(","):
        media, _, params = item.strip().partition(";")
        media = media.strip().lower()
        rank = 2 if media == wanted else 1 if media == f"{major}/*" else 0 \
            if media == "*/*" else -1
        if rank < best_rank or rank < 0:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        best, best_rank = q, rank
    return best


def wants(request: web.Request) -> str:
    """``text/html`` or ``application/json`` for this request (see the module docstring)."""
    chosen = request.query.get("format")
    if chosen is not None:
        if chosen not in _FORMATS:
            raise ProblemError(ProblemDetails(
                400, "invalid-request", "Unknown format",
                f"format must be html or json, not {chosen[:40]!r}"))
        return _FORMATS[chosen]
    accept = request.headers.get("Accept", "")
    if not accept:
        return HTML
    json_q = max(_quality(accept, JSON), _quality(accept, PROBLEM_JSON))
    return JSON if json_q > _quality(accept, HTML) else HTML


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type=HTML, charset="utf-8",
                        headers=security_headers())


def _json(body: object, status: int = 200, content_type: str = JSON) -> web.Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    headers = {"X-Content-Type-Options": "nosniff", "Vary": "Accept"}
    return web.Response(text=text, status=status, content_type=content_type,
                        charset="utf-8", headers=headers)


def _not_found(request: web.Request, reference: str, detail: str, fmt: str) -> web.Response:
    if fmt == JSON:
        problem = ProblemDetails(404, "passport-not-found", "No such battery passport", detail,
                                 {"reference": reference})
        return _json(problem.to_json(), 404, PROBLEM_JSON)
    return _html(not_found_html(reference, detail), 404)


async def _view(request: web.Request, fmt: str) -> PassportView | web.Response:
    reference = request.match_info["ref"]
    try:
        battery = battery_did(reference)
    except UnknownReference as exc:
        return _not_found(request, reference[:200], str(exc), fmt)
    view = await load_view(request.app, battery)
    if view is None:
        return _not_found(request, reference[:200],
                          f"No passport entries for {battery} on this node.", fmt)
    return view


async def passport_page(request: web.Request) -> web.Response:
    fmt = wants(request)
    view = await _view(request, fmt)
    if isinstance(view, web.Response):
        return view
    if fmt == JSON:
        return _json(view.to_json())
    return _html(passport_html(view))


async def passport_qr(request: web.Request) -> web.Response:
    view = await _view(request, HTML)
    if isinstance(view, web.Response):
        return view
    headers = {"Cache-Control": _QR_CACHE, "X-Content-Type-Options": "nosniff"}
    if request.match_info["kind"] == "svg":
        return web.Response(body=qr_svg(view.page_url), content_type="image/svg+xml",
                            headers=headers)
    return web.Response(body=qr_png(view.page_url), content_type="image/png", headers=headers)


async def access_page(request: web.Request) -> web.Response:
    fmt = wants(request)
    view = await _view(request, fmt)
    if isinstance(view, web.Response):
        return view
    category = request.match_info["category"]
    section = next((s for s in view.restricted if s.category == category), None)
    if section is None:
        return _not_found(request, category[:80], "There is no restricted section "
                          f"{category[:80]!r}; the sections are "
                          f"{', '.join(s.category for s in view.restricted)}.", fmt)
    if fmt == JSON:
        sections = view.to_json()["restricted"]
        return _json(next(s for s in sections if s["category"] == category)
                     | {"battery": view.battery, "providerDid": view.node_did,
                        "dspEndpoint": view.dsp_endpoint})
    return _html(access_html(view, section))


def add_routes(app: web.Application) -> None:
    """The page's routes and its verification cache (after the node's verifier)."""
    app.cleanup_ctx.append(verification_ctx)
    app.router.add_get("/passport/{ref}", passport_page)
    app.router.add_get(r"/passport/{ref}/qr.{kind:svg|png}", passport_qr)
    app.router.add_get("/passport/{ref}/access/{category}", access_page)


__all__ = ["add_routes", "wants"]
