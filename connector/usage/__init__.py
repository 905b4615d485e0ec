"""Usage control beyond access: the consumer deletes what it received when the agreement says so
and proves it with a signed deletion receipt; the provider records receipts and lists the ones
that are overdue.

- ``duties``    when an agreement's ``delete`` duty falls due (the ``policies`` engine decides)
- ``receipts``  the ``DataDeletionReceipt`` credential: built, signed, read back
- ``consumer``  received data kept with its purge time, the purge watch, sending receipts
- ``provider``  accepting a receipt, the overdue list
- ``routes``    ``/management/received-data``, ``/management/deletion-receipts`` and the
                participant endpoint ``POST /usage/deletion-receipts``; ``install`` wires them
                and the purge watch into an app
- ``cli``       ``bpc receipts list|overdue`` and ``bpc received``
"""

from __future__ import annotations

from aiohttp import web


def install(app: web.Application) -> None:
    """Add the usage-control routes and the purge watch to ``app`` (``create_app`` calls it
    after the DSP routes, whose clock the watch reads)."""
    from connector.usage.routes import install as _install

    _install(app)


__all__ = ["install"]
