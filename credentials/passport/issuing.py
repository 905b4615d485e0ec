"""Issuing passport credentials: the SHACL shapes are checked before anything is signed.

A signed credential cannot be taken back quietly, so an incomplete or mistyped one is refused
at issue (``ShapeViolation`` naming the attribute), not discovered by a reader later.

The one exception is ``shapes_tested=True``: for credentials whose whole shape is built by
code from values that code checked (the hub bridge's batch, configuration and replacement
credentials), the SHACL run (~12 ms through rdflib, per credential) proves nothing a test
cannot prove once. A caller may pass it only when a test issues every type it builds that
way, runs ``check_shapes`` over the result and asserts it conforms, so drift in either the
code or the shapes fails that test (``tests/connector/test_hub_bridge.py`` for the bridge).
Chain and signature checks are not affected: the passport checks every entry it appends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from credentials.data_integrity import RDFC
from credentials.issuer import JWT, issue_credential, issue_jwt_credential
from credentials.keys import Ed25519Key
from credentials.passport.shapes import check_shapes


def issue_passport_credential(
    credential: dict[str, Any],
    key: Ed25519Key,
    *,
    suite: str = RDFC,
    now: datetime | None = None,
    shapes_tested: bool = False,
) -> dict[str, Any] | str:
    """A secured passport credential (a compact JWT when ``suite`` is ``jwt``);
    ``shapes_tested``: skip the SHACL check (see the module docstring for when that is
    allowed)."""
    check = None if shapes_tested else check_shapes
    if suite == JWT:
        return issue_jwt_credential(credential, key, now=now, check=check)
    return issue_credential(credential, key, suite=suite, now=now, check=check)
