"""``bpc interop``: a conformance and interoperability harness for DSP 2025-1 connectors.

It checks a provider and a consumer (ours or any connector that speaks the Dataspace Protocol
2025-1) with small, separately selectable checks, each with a stable id:

- the Eclipse DSP compatibility kit's 67 scenarios under their own ids (``MET:01-01``,
  ``CAT:…``, ``CN:…``, ``CN_C:…``, ``TP:…``, ``TP_C:…``), the harness playing the kit's side
  (``checks/tck_*``; the kit's trigger contract, seed ids and keys: ``TCK.md``);
- interoperability checks between the two nodes (``IOP:…``): catalog, negotiation to
  FINALIZED, the transfer's start/suspend/resume/complete/terminate, data access with the
  token, refusal after the agreement ended and without the required credential — our own
  consumer driven through its management API (``checks/interop_*``).

The runner never raises for a misbehaving target: a timeout, a refused connection, invalid
JSON or a wrong content type is a failed check with the response it got (``runner``).
"""
