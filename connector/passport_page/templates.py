"""The page's templates (Jinja2, autoescaping on for every one of them) and its stylesheet.

Kept as Python strings so they ship inside the package with no package-data entry. The
stylesheet is inlined and allowed by its hash in the Content-Security-Policy (``headers``):
no external request, and no ``unsafe-inline``.
"""

from __future__ import annotations

CSS = """
:root{--ink:#1b1f24;--muted:#56606b;--line:#d5dbe3;--ok:#1e7b3c;--bad:#b3261e;--warn:#9a6700;
--accent:#1d5fa8;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);background:var(--bg)}
header,main,footer{max-width:60rem;margin:0 auto;padding:1rem}
header{background:#fff;border-bottom:1px solid var(--line);display:flex;flex-wrap:wrap;
gap:1rem;align-items:flex-start;justify-content:space-between}
.kicker{margin:0;color:var(--muted);text-transform:uppercase;letter-spacing:.05em;
font-size:.8rem}
h1{margin:.2rem 0;font-size:1.6rem;word-break:break-all}
h2{font-size:1.25rem;margin:0 0 .6rem;border-bottom:2px solid var(--line);padding-bottom:.3rem}
h3{font-size:1.05rem;margin:.8rem 0 .3rem}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1rem;
margin:0 0 1rem}
code,.mono{font-family:"DejaVu Sans Mono",ui-monospace,monospace;font-size:.85em;
word-break:break-all}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:999px;font-weight:600;
background:#e8eef7;color:var(--accent)}
.status-waste,.status-recycled{background:#fdecea;color:var(--bad)}
.status-repurposed,.status-reused{background:#fff4d6;color:var(--warn)}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);
vertical-align:top}
th{color:var(--muted);font-weight:600}
th[scope=row]{width:40%}
td{overflow-wrap:anywhere}
.scroll{overflow-x:auto}
td.num{text-align:right;white-space:nowrap}
.qr{margin:0;text-align:center}.qr img{width:9rem;height:9rem;display:block}
.qr figcaption{font-size:.75rem;color:var(--muted);max-width:9rem}
.timeline{list-style:none;margin:0;padding:0}
.timeline li{border-left:4px solid var(--ok);padding:.3rem 0 .6rem .8rem;margin-left:.3rem}
.timeline li.failed{border-left-color:var(--bad);background:#fff7f6}
.timeline .when{color:var(--muted);font-size:.9rem}
.reason{margin:.2rem 0 0;color:var(--bad)}
.soh-chart{width:100%;height:auto;max-height:320px}
.events li{margin:.2rem 0}
.restricted article{border:1px dashed var(--line);border-radius:6px;padding:.6rem .8rem;
margin:.6rem 0}
.lock{font-weight:600}
a{color:var(--accent)}
.button{display:inline-block;padding:.4rem .9rem;border:1px solid var(--accent);border-radius:6px;
text-decoration:none;font-weight:600}
pre{background:var(--bg);padding:.6rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
@media (max-width:40rem){header{flex-direction:column}.qr{align-self:center}
h1{font-size:1.3rem}th,td{padding:.3rem .25rem}section{padding:.7rem}
#recycled-content{font-size:.85rem}}
"""

BASE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{% block title %}{% endblock %}</title>
<style>{{ css }}</style>
</head>
<body>
{% block body %}{% endblock %}
</body>
</html>
"""

PAGE = """{% extends "base.html" %}
{% block title %}Battery passport {{ view.title }}{% endblock %}
{% block body %}
<header>
  <div>
    <p class="kicker">EU battery passport · Regulation (EU) 2023/1542</p>
    <h1>{{ view.title }}</h1>
    <p>Status: <span class="badge status-{{ view.status.value }}" id="status">{{
      view.status.label }}</span>{% if view.status.since %} since {{
      view.status.since | day }}{% endif %}</p>
    {% if view.chain_ok and not view.unverified_count %}
    <p class="ok" id="verification">✔ All {{ view.timeline | length }} entries of this passport
      verified: signatures, links and custody hold.</p>
    {% else %}
    <p class="bad" id="verification">✘ {{ view.unverified_count }} of {{
      view.timeline | length }} entries failed verification; data from them is not shown.
      See the chain of custody below.</p>
    {% endif %}
    <p>Battery DID <code>{{ view.battery }}</code></p>
  </div>
  <figure class="qr">
    <img src="{{ view.path }}/qr.svg" alt="QR code of this page's address" width="144"
      height="144">
    <figcaption>Scan to open this passport · <a href="{{ view.path }}/qr.png">PNG</a></figcaption>
  </figure>
</header>
<main>
<section id="public-data">
  <h2>Public data</h2>
  {% for group, rows in view.attribute_groups() %}
  <h3>{{ group }}</h3>
  <table>
    {% for a in rows %}
    <tr><th scope="row">{{ a.label }}</th><td>{% if a.link %}<a href="{{ a.link }}">{{
      a.value }}</a>{% else %}{{ a.value }}{% endif %}{% if a.unit %} {{ a.unit }}{% endif
      %}</td></tr>
    {% endfor %}
  </table>
  {% else %}
  <p>No verified entry of this passport carries public product data.</p>
  {% endfor %}
</section>

<section id="sustainability">
  <h2>Carbon footprint and recycled content</h2>
  {% if view.carbon %}
  <table>
    <tr><th scope="row">Carbon footprint</th><td>{{ view.carbon.kg_co2e_per_kwh }} kg CO₂e per
      kWh{% if view.carbon.total_kg_co2e is not none %} ({{ view.carbon.total_kg_co2e }} kg CO₂e
      for the battery){% endif %}</td></tr>
    {% if view.carbon.performance_class %}
    <tr><th scope="row">Carbon footprint performance class</th><td>{{
      view.carbon.performance_class }}</td></tr>
    {% endif %}
  </table>
  {% else %}
  <p>No verified carbon footprint declaration.</p>
  {% endif %}
  <h3>Recycled content (Art. 8)</h3>
  <div class="scroll">
  <table id="recycled-content">
    <tr><th>Element</th><th class="num">Declared</th><th class="num">Minimum from {{
      first_date | day }}</th><th class="num">Minimum from {{ second_date | day
      }}</th></tr>
    {% for r in view.recycled %}
    <tr><td>{{ r.name }} ({{ r.element }})</td>
      <td class="num">{% if r.declared_pct is not none %}{{ r.declared_pct }} %{% else
        %}not declared{% endif %}</td>
      <td class="num">{{ r.minimum_first_pct }} % {{ r.meets_first | verdict }}</td>
      <td class="num">{{ r.minimum_second_pct }} % {{ r.meets_second | verdict }}</td></tr>
    {% endfor %}
  </table>
  </div>
</section>

<section id="health">
  <h2>State of health</h2>
  {{ chart }}
  <h3>Thermal and tamper events</h3>
  {% if view.events %}
  <ul class="events">
    {% for e in view.events %}
    <li class="{{ 'bad' if e.category == 'thermal' else 'warn' }}"><strong>{{ e.description
      }}</strong>{% if e.count > 1 %} ({{ e.count }} times){% endif %} — {{ e.start | moment }}{%
      if e.end and e.end != e.start %} to {{ e.end | moment }}{% endif %}</li>
    {% endfor %}
  </ul>
  {% else %}
  <p class="ok">No thermal or tamper events recorded.</p>
  {% endif %}
</section>

<section id="custody">
  <h2>Chain of custody</h2>
  {% for p in view.chain_problems %}<p class="reason">{{ p.reason }}</p>{% endfor %}
  <ol class="timeline">
    {% for t in view.timeline %}
    <li class="{{ 'verified' if t.verified else 'failed' }}">
      <strong>{{ t.label }}</strong>
      {% if t.verified %}<span class="ok">✔ verified</span>{% else
      %}<span class="bad">✘ not verified</span>{% endif %}
      <div class="when">{{ t.issued_at | moment }} · entry {{ t.position + 1 }}</div>
      <div>by <code>{{ t.issuer }}</code>{% if t.by_this_node %} (this node){% endif %}</div>
      {% for p in t.problems %}
      <p class="reason">{{ p.reason }}{% if p.path %} (<code>{{ p.path }}</code>){% endif %}</p>
      {% endfor %}
    </li>
    {% endfor %}
  </ol>
</section>

<section id="restricted" class="restricted">
  <h2>Restricted data</h2>
  <p>Regulation (EU) 2023/1542 Art. 77(2) restricts these parts of the passport. They are not
    on this page; who may read them gets them from this node under a contract.</p>
  {% for s in view.restricted %}
  <article>
    <h3>Restricted: {{ s.info.title }}</h3>
    <p class="lock">{{ s.info.audience }}</p>
    <p>Holds: {{ s.info.holds }}.</p>
    <a class="button" href="{{ view.path }}/access/{{ s.category }}">Request access</a>
  </article>
  {% endfor %}
</section>
</main>
<footer>
  <p>Served by <code>{{ view.node_did }}</code> · <a href="{{ view.path }}?format=json">This
    passport as JSON</a></p>
</footer>
{% endblock %}
"""

ACCESS = """{% extends "base.html" %}
{% block title %}Request access · {{ section.info.title }}{% endblock %}
{% block body %}
<header><div>
  <p class="kicker">EU battery passport · restricted data</p>
  <h1>{{ section.info.title }}</h1>
  <p class="lock">{{ section.info.audience }}</p>
</div></header>
<main>
<section>
  <h2>How to get this data</h2>
  <p>It holds {{ section.info.holds }} of battery <code>{{ view.battery }}</code>.</p>
  <p>This node publishes it in its Dataspace Protocol catalog. Your own connector node asks for
    a contract; the node checks your credentials (for example a certified recycler's
    <code>DismantlerCredential</code> from an issuer it trusts) and, if they fit the offer's
    policy, you may fetch the data while the agreement runs.</p>
  <table>
    <tr><th scope="row">Provider endpoint (DSP)</th>
      <td><code>{{ view.dsp_endpoint }}</code></td></tr>
    <tr><th scope="row">Provider DID</th><td><code>{{ view.node_did }}</code></td></tr>
  </table>
  {% if section.offers %}
  {% for o in section.offers %}
  <h3>Dataset <code>{{ o.dataset }}</code></h3>
  <p>Offer <code>{{ o.offer }}</code>. With your node's operator key set, type:</p>
  <pre>bpc negotiate {{ view.dsp_endpoint }} --offer {{ o.offer }} --provider-did {{
    view.node_did }}</pre>
  {% endfor %}
  {% else %}
  <p class="warn">This node has not published an offer for this data yet. Look in its catalog
    later, or ask the operator of <code>{{ view.node_did }}</code>:</p>
  <pre>bpc catalog {{ view.dsp_endpoint }} --provider-did {{ view.node_did }}</pre>
  {% endif %}
  <p><a href="{{ view.path }}">Back to the passport</a></p>
</section>
</main>
{% endblock %}
"""

NOT_FOUND = """{% extends "base.html" %}
{% block title %}No such battery passport{% endblock %}
{% block body %}
<header><div>
  <p class="kicker">EU battery passport</p>
  <h1>No such battery passport</h1>
</div></header>
<main><section>
  <p>This node keeps no passport for <code>{{ reference }}</code>.</p>
  <p>{{ detail }}</p>
  <p>Check the code you scanned or typed: a passport address ends in the battery's DID or in
    its passport id (the part after <code>did:key:</code>).</p>
</section></main>
{% endblock %}
"""

TEMPLATES: dict[str, str] = {"base.html": BASE, "passport.html": PAGE, "access.html": ACCESS,
                             "not_found.html": NOT_FOUND}

__all__ = ["CSS", "TEMPLATES"]
