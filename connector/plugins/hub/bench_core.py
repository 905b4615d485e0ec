"""Micro benchmark of the hub bridge's pure core (no I/O): is it far above 50,000 events/s?

``bench_core(n_events)`` returns per-second rates, each measured on ``n_events`` items:

- ``simulate_aggregate``: readings a 192-cell simulated hub produces and a ``CellAggregator``
  digests (threshold checks, per-cell per-minute summaries), end to end; ``aggregate`` is the
  aggregator alone on recorded readings (the bridge's own share);
- ``sign_hub_message`` / ``verify_hub_message``: readings per second through hub messages of
  100 readings each (JWS sign; size check, signature, schema, hub and clock checks);
  ``sign_verify`` is both in sequence;
- ``merkle_batch_1000``: events per second through a ``Batcher`` closing batches of 1000
  (event digests, Merkle root, every inclusion proof);
- ``ed25519_verify_raw``: bare Ed25519 verifications of a 64-byte message, and
  ``ed25519_verify_message`` of one hub message's signing input: the references, measured
  in the same run, that say how much of the message cost is the signature itself.

Run ``python -m connector.plugins.hub.bench_core [n_events]``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from connector.plugins.hub.aggregate import CellAggregator
from connector.plugins.hub.batching import Batcher
from connector.plugins.hub.events import (
    CellEvent,
    EventKind,
    HubMessage,
    registered_hubs,
    sign_hub_message,
    verify_hub_message,
)
from connector.plugins.hub.simulator import SimulatedHub
from credentials.did_key import key_from_seed

_START = datetime(2026, 1, 1, tzinfo=UTC)
_PER_MESSAGE = 100


def _rate(count: int, run: Callable[[], object]) -> float:
    began = time.perf_counter()
    run()
    return count / max(time.perf_counter() - began, 1e-9)


def bench_core(n_events: int = 50_000) -> dict[str, float]:
    """Rates (items per second) of the core's stages; see the module docstring."""
    battery = key_from_seed(b"\x01" * 32).controller
    results: dict[str, float] = {}

    # simulate + aggregate
    hub = SimulatedHub(battery, 192, seed=7)
    aggregator = CellAggregator()
    aggregator.register(hub.hub_id, battery, hub.registered_cells())
    ticks = max(1, n_events // hub.cells)

    def simulate() -> None:
        for tick in range(ticks):
            for reading in hub.readings(_START + timedelta(seconds=tick)):
                aggregator.feed(reading)

    results["simulate_aggregate"] = _rate(ticks * hub.cells, simulate)

    # aggregate alone (the bridge's path: readings come from verified messages)
    recorded = SimulatedHub(battery, 192, seed=9)
    stream = recorded.run(_START, ticks)
    fresh = CellAggregator()
    fresh.register(recorded.hub_id, battery, recorded.registered_cells())
    results["aggregate"] = _rate(len(stream), lambda: fresh.feed_many(stream))

    # sign and verify hub messages of 100 readings
    source = SimulatedHub(battery, 200, seed=8)
    readings = source.run(_START, max(1, n_events // source.cells))
    payloads = [HubMessage(hub_id=source.hub_id, sent_at=_START,
                           readings=readings[i:i + _PER_MESSAGE])
                for i in range(0, len(readings), _PER_MESSAGE)]
    signed: list[bytes] = []
    results["sign_hub_message"] = _rate(len(readings), lambda: signed.extend(
        sign_hub_message(source.hub_key, payload) for payload in payloads))
    resolver = registered_hubs([source.hub_id])
    now = _START + timedelta(minutes=1)

    def verify() -> None:
        for raw in signed:
            verify_hub_message(raw, resolver, now=now)

    results["verify_hub_message"] = _rate(len(readings), verify)
    results["sign_verify"] = 1 / (1 / results["sign_hub_message"]
                                  + 1 / results["verify_hub_message"])

    # Merkle batches of 1000 events
    events = [CellEvent.create(kind=EventKind.CELL_SUMMARY, hub_id=source.hub_id,
                               battery_did=battery, position=i % 192,
                               cell_uid=f"0AXCEA1T000001K29{i:07d}", seq=i, observed_at=_START,
                               details={"readings": 60, "voltage_mv": {"min": 3612, "max": 3671,
                                                                       "mean": 3643}})
              for i in range(n_events)]

    def batch() -> None:
        batcher = Batcher(max_events=1000)
        for event in events:
            closed = batcher.add(event, _START)
            if closed is not None:
                closed.tree.proofs()

    results["merkle_batch_1000"] = _rate(len(events), batch)

    # references: bare Ed25519
    public = source.hub_key.public_key
    small = b"m" * 64
    small_sig = source.hub_key.sign(small)
    count = max(1, n_events // 10)
    results["ed25519_verify_raw"] = _rate(count, lambda: [public.verify(small, small_sig)
                                                          for _ in range(count)])
    signing_input, _, _ = signed[0].rpartition(b".")
    message_sig = source.hub_key.sign(signing_input)
    results["ed25519_verify_message"] = _rate(
        len(signed), lambda: [public.verify(signing_input, message_sig) for _ in signed])
    return results


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    n_events = int(args[0]) if args else 50_000
    for name, value in bench_core(n_events).items():
        unit = "verifies/s" if name.startswith("ed25519") else "events/s"
        print(f"{name:24} {value:>12,.0f} {unit}")


if __name__ == "__main__":
    main()
