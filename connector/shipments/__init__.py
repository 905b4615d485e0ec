"""Shipment declarations that customs can verify offline (product or waste?).

A shipper's node builds a declaration (``declaration.py``) from the batteries' passports, their
functionality tests, both parties' signed attestations of the contract agreement with the
receiving facility (``attestation.py``) and the facility's authorisation; an officer's node, or
``bpc shipment verify`` with an offline cache, checks it (``verify.py``) and classifies each
battery as product (repair / reuse), product (repurposing) or waste (``rules.py``). Routes:
``routes.py``; the officer's page: ``page.py``; the design: ``README.md``.
"""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Register the shipment routes (management, protocol extension, officer endpoints)."""
    from connector.shipments import routes

    routes.add_routes(app)


__all__ = ["add_routes"]
