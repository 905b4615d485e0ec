"""I-JSON number policy for credentials.

Numbers are where independent implementations part ways: integers beyond 2^53 are not exact
in JavaScript, and RDF canonicalisation writes doubles with 15 significant digits, so a value
with more precision would be signed as a *different* number than the one stored. Measurements
that need that range or precision travel as typed strings (e.g. xsd:decimal) instead.
"""

from __future__ import annotations

import math
from typing import Any

from credentials.errors import NumberOutOfRange

MAX_SAFE_INTEGER = 2**53 - 1


def check_numbers(node: Any, path: str = "$") -> None:
    """Raise ``NumberOutOfRange`` naming the first number a peer could read differently."""
    if isinstance(node, bool) or node is None or isinstance(node, str):
        return
    if isinstance(node, int):
        if abs(node) > MAX_SAFE_INTEGER:
            raise NumberOutOfRange(
                f"{path}: integer {node} is outside the I-JSON range +-(2^53-1); "
                "carry it as a string with an explicit datatype",
                path=path,
            )
        return
    if isinstance(node, float):
        if not math.isfinite(node):
            raise NumberOutOfRange(f"{path}: {node} is not a JSON number", path=path)
        if node != 0.0 and float(f"{node:.14e}") != node:
            raise NumberOutOfRange(
                f"{path}: {node!r} has more than 15 significant digits and would not survive "
                "canonicalisation; carry it as an xsd:decimal string",
                path=path,
            )
        return
    if isinstance(node, dict):
        for key, value in node.items():
            check_numbers(value, f"{path}.{key}")
        return
    if isinstance(node, list):
        for index, value in enumerate(node):
            check_numbers(value, f"{path}[{index}]")
