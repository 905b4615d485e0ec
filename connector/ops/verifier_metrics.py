"""Counting the node's verifications where they all pass: its one ``Verifier``.

Every credential or presentation the node checks — on the VC-API, a DCP presentation from a
consumer, a credential put into the wallet, a trust list, a deletion receipt, a hub
credential — goes through the app's ``VERIFIER``. Wrapping that one object counts them all
without a counter at each call site, and keeps ``credentials`` (a library that never imports
connector) free of metrics. Only the outermost call counts: the credentials inside a
presentation and the status lists fetched to check a credential are part of that one
verification, not verifications of their own.
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any, Literal

from prometheus_client import Counter

from credentials import VerificationResult, Verifier, VerifyOptions

_INSIDE: ContextVar[bool] = ContextVar("bpc_counting_verification", default=False)


class CountingVerifier(Verifier):
    """``inner`` (same resolver, status checker and cache), counting outcomes in ``counter``
    (labels ``kind`` and ``result``: ``verified``, ``failed`` or ``error`` when it raised)."""

    def __init__(self, inner: Verifier, counter: Counter) -> None:
        super().__init__(inner.resolver, status_checker=inner.status_checker)
        vars(self).update(vars(inner))  # whatever else the verifier holds, shared as is
        self._counter = counter

    async def verify_credential(self, credential: dict[str, Any] | str,
                                options: VerifyOptions | None = None) -> VerificationResult:
        return await self._counted("credential", super().verify_credential(credential, options))

    async def verify_presentation(self, presentation: dict[str, Any] | Any,
                                  options: VerifyOptions | None = None) -> VerificationResult:
        return await self._counted("presentation",
                                   super().verify_presentation(presentation, options))

    async def _counted(self, kind: Literal["credential", "presentation"],
                       verification: Awaitable[VerificationResult]) -> VerificationResult:
        if _INSIDE.get():
            return await verification
        token = _INSIDE.set(True)
        try:
            result = await verification
        except Exception:
            self._counter.labels(kind, "error").inc()
            raise
        finally:
            _INSIDE.reset(token)
        self._counter.labels(kind, "verified" if result.verified else "failed").inc()
        return result


__all__ = ["CountingVerifier"]
