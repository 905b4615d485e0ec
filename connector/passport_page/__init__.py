"""The passport page: what a QR code on a battery opens (issue 8).

``GET /passport/{battery DID or passport id}`` serves public data openly to anyone — HTML for
people (server-rendered, no JavaScript, readable on a phone), the same view as JSON for
machines — and names the restricted sections with the way to request them under contract.

Modules, one job each: ``identifiers`` (passport id ⇄ DID, page URL), ``disclosure`` (the
whitelist of what is public), ``verification`` (the chain audited with the node's verifier,
cached per head), ``entries`` (the chain read once), ``status``, ``content`` (carbon footprint,
recycled content), ``health`` (SoH series, events), ``restricted`` (sections and offers),
``view`` (the view model and its JSON), ``chart`` (SVG), ``qr`` (QR codes and labels),
``templates`` and ``render`` (HTML, headers), ``loading`` (store → view), ``routes``.
"""

from connector.passport_page.routes import add_routes

__all__ = ["add_routes"]
