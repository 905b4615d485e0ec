"""The officer's page: upload (or paste) a shipment declaration, read the verdict per battery.

Plain HTML, no JavaScript, one column that fits a phone: a ``multipart/form-data`` form posts
the file (or the text a scanner app produced) back to ``/shipments/verify``, which answers with
the same page and the verdict table. Every value shown comes from the declaration, i.e. from
whoever wrote it, so the template is rendered by jinja2 with autoescaping on (a credential
field holding markup or script is shown as text). The template lives here, not in a data file,
so it ships with the module.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape

from connector.shipments.rules import ShipmentVerdict

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shipment declaration check</title>
<style>
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;line-height:1.4}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;padding:.3rem;
vertical-align:top;text-align:left;overflow-wrap:anywhere}
.product{background:#e3f6e3}.waste{background:#fbe3e3}textarea{width:100%;min-height:6rem}
code{overflow-wrap:anywhere}
</style>
</head>
<body>
<h1>Shipment declaration check</h1>
<p>Is a used battery crossing this border a product or waste? Upload the shipment declaration
(a JSON file) or paste its text, and this node checks every signature, the issuers against its
trust list, validity and revocation, and classifies each battery.</p>
<form method="post" action="/shipments/verify" enctype="multipart/form-data">
<p><label>Declaration file <input type="file" name="declaration_file"
accept="application/json,.json,.jsonld"></label></p>
<p><label>or its text<br><textarea name="declaration"></textarea></label></p>
<p><button type="submit">Check</button></p>
</form>
{% if error %}<h2>Not checked</h2><p class="waste">{{ error }}</p>{% endif %}
{% if verdict %}
<h2>Verdict</h2>
<p>Declaration <code>{{ verdict.declaration or "(no id)" }}</code> from
<code>{{ verdict.consignor or "?" }}</code> to <code>{{ verdict.consignee or "?" }}</code>,
checked {{ checked_at }}{% if sources.mode %} ({{ sources.mode }}{% if sources.filledAt %},
cache filled {{ sources.filledAt }}{% endif %}){% endif %}.
Shipper's signature: <strong>{{ "valid" if verdict.signature_valid else "NOT valid" }}</strong>.</p>
<table>
<thead><tr><th>Battery</th><th>Declared purpose</th><th>Classification</th><th>Rule</th>
<th>Missing or failing</th></tr></thead>
<tbody>
{% for item in verdict.items %}
<tr class="{{ 'waste' if item.classification == 'waste' else 'product' }}">
<td><code>{{ item.battery }}</code></td><td>{{ item.declared_purpose or "-" }}</td>
<td><strong>{{ item.label }}</strong></td><td><code>{{ item.rule }}</code><br>{{ item.reason }}</td>
<td>{% if item.missing %}<ul>{% for finding in item.missing %}<li><code>{{ finding.code }}</code>:
{{ finding.message }}</li>{% endfor %}</ul>{% else %}nothing{% endif %}</td>
</tr>
{% else %}
<tr class="waste"><td colspan="5">No battery could be read from this declaration.</td></tr>
{% endfor %}
</tbody>
</table>
{% if verdict.findings %}<h3>About the whole declaration</h3><ul>
{% for finding in verdict.findings %}<li><code>{{ finding.code }}</code>: {{ finding.message }}</li>
{% endfor %}</ul>{% endif %}
<h3>Credentials in the declaration</h3>
<table><thead><tr><th>#</th><th>Type</th><th>Issuer</th><th>Verified</th><th>Trusted</th>
<th>Problems</th></tr></thead><tbody>
{% for credential in verdict.credentials %}
<tr><td>{{ credential.index }}</td><td>{{ credential.types | join(", ") }}</td>
<td><code>{{ credential.issuer or "?" }}</code></td>
<td>{{ "yes" if credential.verified else "no" }}</td>
<td>{{ "-" if credential.trusted is none else ("yes" if credential.trusted else "no") }}</td>
<td>{{ credential.problems | join("; ") }}</td></tr>
{% endfor %}
</tbody></table>
{% endif %}
</body>
</html>
"""


@cache
def _environment() -> Environment:
    return Environment(loader=DictLoader({"verify.html": TEMPLATE}),
                       autoescape=select_autoescape(default=True, default_for_string=True))


def render_page(verdict: ShipmentVerdict | None = None, *, error: str | None = None) -> str:
    """The page, with the verdict (or why there is none) when given."""
    context: dict[str, Any] = {"verdict": verdict, "error": error, "sources": {},
                               "checked_at": ""}
    if verdict is not None:
        context["sources"] = verdict.sources
        context["checked_at"] = verdict.to_json()["checkedAt"]
    return _environment().get_template("verify.html").render(**context)


__all__ = ["TEMPLATE", "render_page"]
