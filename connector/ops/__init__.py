"""What every node offers the people who run it, one module per job.

- ``health``   ``GET /health`` (liveness) and ``GET /ready`` (readiness: store and identity)
- ``metrics``  ``GET /metrics`` in the Prometheus text format, from a per-node registry
- ``verifier_metrics``  counts the node's credential and presentation verifications
- ``logs``     text or JSON log lines, with secrets scrubbed from every line
- ``api_docs`` the description of one management operation, kept beside its handler
- ``openapi``  ``GET /openapi.json``, built from the router and those descriptions
"""
