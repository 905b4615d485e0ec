"""Exact decimal arithmetic for mass balance and tracing: the fixed arithmetic context, the
constants, and ``xsd:decimal`` parsing. Masses are ``decimal.Decimal`` on the strings the
credentials carry, so a result does not depend on binary floating point.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from typing import Any

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
#: Fixed arithmetic context (used by mass balance, recycled content and ``trace``): a caller's
#: global decimal settings must not change a verdict.
DECIMAL_CONTEXT = Context(prec=34, traps=[InvalidOperation, DivisionByZero, Overflow])
#: Longer decimal strings are rejected: no credential needs them, and they cost time.
_MAX_DECIMAL_CHARS = 40


def brief_repr(value: Any) -> str:
    """``repr`` of a value for a problem message, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_decimal(value: Any, path: str, problems: list[str], *,
                  positive: bool = False) -> Decimal | None:
    """An ``xsd:decimal`` lexical form (or a JSON integer, or a ``{"@value": …}`` object)
    as a non-negative Decimal; anything else adds a problem and gives None. Floats are
    refused: they are not exact, and the contract carries measurements as strings."""
    if isinstance(value, Mapping) and "@value" in value:
        value = value["@value"]
    result: Decimal | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) <= _MAX_DECIMAL_CHARS and _is_decimal_lexical(text):
            result = Decimal(text)
    if result is None:
        kind = "a float (use an xsd:decimal string)" if isinstance(value, float) else (
            "missing" if value is None else f"{brief_repr(value)}, not an xsd:decimal")
        problems.append(f"{path} is {kind}")
        return None
    if result < 0 or (positive and result == 0):
        problems.append(f"{path} is {format(result, 'f')}; it must be "
                        f"{'positive' if positive else 'zero or more'}")
        return None
    return result


def _is_decimal_lexical(text: str) -> bool:
    """xsd:decimal lexical space: optional sign, digits, optional fraction; no exponent,
    no NaN/Infinity (which ``Decimal()`` would accept)."""
    if text[:1] in "+-":
        text = text[1:]
    whole, _, fraction = text.partition(".")
    if not (whole or fraction):
        return False
    return (not whole or (whole.isascii() and whole.isdigit())) and (
        not fraction or (fraction.isascii() and fraction.isdigit()))
