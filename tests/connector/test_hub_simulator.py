"""The simulated hub: realistic, deterministic readings and faults that do what they say."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connector.plugins.hub.events import CellReading, registered_hubs, verify_hub_message
from connector.plugins.hub.simulator import MAX_CELLS, Overheat, Silent, SimulatedHub, Swap, ocv
from credentials.did_key import key_from_seed, public_key_of_did_key

BATTERY = key_from_seed(b"\x44" * 32).controller
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
RANGES = Path(__file__).resolve().parents[3] / "shared/passport-model/derived/synthetic-ranges.json"


def gbt_cell_code() -> re.Pattern[str]:
    if RANGES.exists():  # the shared research data, when it sits beside the repository
        pattern = json.loads(RANGES.read_text())["identifier_formats"]["gbt34014_regex_catenax"]
    else:
        pattern = (r"^[A-Z0-9]{3}[PMC][A-GZ][A-Z0-9]{2}[A-Z0-9]{7}[1-9A-GH-NPR-Y][1-9A-C]"
                   r"[0-9A-GH-NPR-Y][0-9]{7}$")
    return re.compile(pattern)


@pytest.mark.parametrize("cells", [0, -1, 1001, True, 1.5, "192"])
def test_pack_size_is_validated(cells):
    with pytest.raises(ValueError, match="cells"):
        SimulatedHub(BATTERY, cells)


@pytest.mark.parametrize("cells", [1, 192, MAX_CELLS])
def test_one_reading_per_cell_per_tick(cells):
    hub = SimulatedHub(BATTERY, cells, seed=1)
    readings = hub.readings(T0)
    assert [r.position for r in readings] == list(range(cells))
    assert {r.timestamp for r in readings} == {T0}
    assert hub.tick == 1


def test_cells_and_monitors_have_unique_ids_and_real_did_keys():
    hub = SimulatedHub(BATTERY, 192, seed=3)
    cells = hub.registered_cells()
    assert sorted(cells) == list(range(192))
    uids = [cell.cell_uid for cell in cells.values()]
    monitors = [cell.monitor_did for cell in cells.values()]
    assert len(set(uids)) == 192 and len(set(monitors)) == 192
    code = gbt_cell_code()
    assert all(code.fullmatch(uid) for uid in uids), uids[:3]
    for did in [*monitors, hub.hub_id]:
        public_key_of_did_key(did)  # decodes: a real Ed25519 did:key
    assert hub.hub_id == hub.hub_key.controller
    assert hub.hub_id not in monitors
    uid, monitor = cells[0]  # position -> (cell_uid, monitor_did)
    assert (uid, monitor) == (cells[0].cell_uid, cells[0].monitor_did)


def test_same_seed_same_pack_and_readings():
    a, b = SimulatedHub(BATTERY, 50, seed=9), SimulatedHub(BATTERY, 50, seed=9)
    assert a.registered_cells() == b.registered_cells() and a.hub_id == b.hub_id
    assert a.run(T0, 5) == b.run(T0, 5)
    c = SimulatedHub(BATTERY, 50, seed=10)
    assert c.registered_cells() != a.registered_cells() and c.hub_id != a.hub_id


def test_readings_are_valid_and_realistic():
    hub = SimulatedHub(BATTERY, 192, seed=4)
    readings = hub.run(T0, 120)
    for r in readings:
        # constructed without validation for speed: prove every one would validate
        assert CellReading.model_validate(r.model_dump()) == r
        assert 3.55 <= r.voltage_v <= 3.75, r
        assert 20.0 <= r.temperature_c <= 35.0, r
        assert 0.3 <= r.soc <= 0.6, r
    assert [r.seq for r in readings] == list(range(len(readings)))
    first = {r.position: r for r in readings[:192]}
    last = {r.position: r for r in readings[-192:]}
    assert any(first[p].soc != last[p].soc for p in first)  # the state of charge drifts
    mean_v = sum(r.voltage_v for r in readings) / len(readings)
    assert 3.6 <= mean_v <= 3.7


def test_ocv_curve():
    assert ocv(0.0) == 3.0 and ocv(1.0) == pytest.approx(4.17)
    assert 3.6 <= ocv(0.4) <= 3.7
    assert all(ocv(x / 100) < ocv((x + 1) / 100) for x in range(100))


def test_overheat_ramps_past_the_threshold_and_stays_there():
    hub = SimulatedHub(BATTERY, 10, seed=5).overheat(2, from_tick=5)
    temps = [r.temperature_c for r in hub.run(T0, 40) if r.position == 2]
    assert max(temps[:5]) <= 35.0
    assert temps[5] > temps[4]
    crossing = next(i for i, t in enumerate(temps) if t > 60)
    assert all(t > 60 for t in temps[crossing:])
    assert max(temps) <= 85.0
    others = [r.temperature_c for r in hub.run(T0 + 40 * SECOND, 5) if r.position != 2]
    assert max(others) <= 35.0


def test_swap_changes_the_cell_id_from_its_tick_on():
    hub = SimulatedHub(BATTERY, 10, seed=6, faults=[Swap(4, at_tick=3)])
    registered = hub.registered_cells()
    uids = [r.cell_uid for r in hub.run(T0, 6) if r.position == 4]
    assert uids[:3] == [registered[4].cell_uid] * 3
    assert len(set(uids[3:])) == 1 and uids[3] != registered[4].cell_uid
    assert uids[3] not in {cell.cell_uid for cell in registered.values()}
    assert gbt_cell_code().fullmatch(uids[3])
    assert hub.registered_cells() == registered  # the hub's registration does not change


def test_silent_monitor_sends_nothing_from_its_tick_on():
    hub = SimulatedHub(BATTERY, 10, seed=7, faults=[Silent(1, from_tick=2), Overheat(0, 9)])
    per_tick = [hub.readings(T0 + i * SECOND) for i in range(5)]
    assert [len(t) for t in per_tick] == [10, 10, 9, 9, 9]
    assert all(r.position != 1 for tick in per_tick[2:] for r in tick)
    seqs = [r.seq for tick in per_tick for r in tick]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


@pytest.mark.parametrize("fault", [Swap(10, 1), Overheat(-1, 1), Silent(3, -1)])
def test_faults_outside_the_pack_are_refused(fault):
    with pytest.raises(ValueError):
        SimulatedHub(BATTERY, 10, faults=[fault])


def test_signed_messages_verify_and_carry_up_to_100_readings():
    hub = SimulatedHub(BATTERY, 192, seed=8)
    raw = hub.messages(T0, per_message=100)
    assert len(raw) == 2
    resolve = registered_hubs([hub.hub_id])
    verified = [verify_hub_message(m, resolve, now=T0) for m in raw]
    assert [len(m.readings) for m in verified] == [100, 92]
    assert [r.position for m in verified for r in m.readings] == list(range(192))
