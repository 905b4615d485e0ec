"""The hub bridge: cell-monitor data from a pack's system hub, turned into passport events.

Modern packs put a wireless monitor on every cell; a hub beside the BMS collects their data
and signs it with its own did:key. The bridge verifies the hub's messages (``events``),
aggregates raw readings per cell and period and raises threshold events at once
(``aggregate``), and batches events under one Merkle root each, so one credential per batch
covers them all and every event stays provable offline (``batching``). ``simulator`` is a
built-in hub for demos and tests; ``bench_core`` measures the pure core.

Everything in this package is pure logic, no I/O: sources (MQTT, JSONL replay) and the plugin
object that wires them to the node live beside it.
"""
