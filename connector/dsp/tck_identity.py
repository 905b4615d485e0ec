"""TEST ONLY: the compatibility kit's identity stub.

The Eclipse DSP compatibility kit authenticates every protocol request with one literal
``Authorization`` value from its properties file, not a token signed by a participant key. A
node under test (``tck_triggers = true``) with ``tck_authorization`` set takes a request that
carries exactly that value as coming from ``tck_participant_did``; every other request is
authenticated as always. Off by default, refused by the config without ``tck_triggers``, and
compared in constant time. Never on a node that serves real partners: whoever knows the value
is that participant.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass

from aiohttp import web

from connector.participant_auth import VerifiedCaller


@dataclass(frozen=True)
class TckIdentity:
    authorization: str
    did: str

    def matches(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), self.authorization.encode())

    def caller(self) -> VerifiedCaller:
        # no token, so no DCP access token and a fresh jti (replay is the kit's business)
        return VerifiedCaller(did=self.did, claims={"jti": f"urn:uuid:{uuid.uuid4()}"})


TCK_IDENTITY = web.AppKey("tck_identity", TckIdentity)

__all__ = ["TCK_IDENTITY", "TckIdentity"]
