"""HTML for the passport page, its access-request page and its 404, through Jinja2 with
autoescaping on for every template: a value from a credential can never become markup.

Also the response headers every page carries: a Content-Security-Policy that allows no script
at all and only the page's own stylesheet (by hash) and images, ``nosniff``, and
``Vary: Accept`` because one URL answers HTML and JSON.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from functools import cache

from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup

from .chart import soh_chart
from .content import minimum_dates
from .restricted import RestrictedSection
from .templates import CSS, TEMPLATES
from .view import PassportView


def _day(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d")


def _moment(value: datetime | None) -> str:
    return "time unknown" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _verdict(value: bool | None) -> str:
    return "" if value is None else "✔" if value else "✘ below"


@cache
def environment() -> Environment:
    env = Environment(loader=DictLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(day=_day, moment=_moment, verdict=_verdict)
    return env


def style_hash() -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()


def security_headers() -> dict[str, str]:
    policy = (f"default-src 'none'; img-src 'self'; style-src '{style_hash()}'; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Vary": "Accept"}


def _render(name: str, **values: object) -> str:
    return environment().get_template(name).render(css=Markup(CSS), **values)


def passport_html(view: PassportView) -> str:
    first, second = minimum_dates()
    return _render("passport.html", view=view, chart=soh_chart(view.soh, view.events),
                   first_date=first, second_date=second)


def access_html(view: PassportView, section: RestrictedSection) -> str:
    return _render("access.html", view=view, section=section)


def not_found_html(reference: str, detail: str) -> str:
    return _render("not_found.html", reference=reference, detail=detail)


__all__ = ["access_html", "environment", "not_found_html", "passport_html",
           "security_headers", "style_hash"]
