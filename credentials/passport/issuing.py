"""Issuing passport credentials: the SHACL shapes are checked before anything is signed.

A signed credential cannot be taken back quietly, so an incomplete or mistyped one is refused
at issue (``ShapeViolation`` naming the attribute), not discovered by a reader later.
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
) -> dict[str, Any] | str:
    """A secured passport credential (a compact JWT when ``suite`` is ``jwt``)."""
    if suite == JWT:
        return issue_jwt_credential(credential, key, now=now, check=check_shapes)
    return issue_credential(credential, key, suite=suite, now=now, check=check_shapes)
