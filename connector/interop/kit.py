"""The DSP compatibility kit's 67 scenarios, its configuration keys and seed ids.

``SCENARIOS`` lists every mandatory test of eclipse-dataspacetck/dsp-tck (DSP 2025-1) under its
original id, with the role of the connector under test (CUT), whether it is negative, the
seed ids of the kit's ``sample.tck.properties`` and its message sequence, written as steps:

``>X`` the kit (here: the harness) sends X; ``<X`` the CUT sends X and the kit waits for it;
``>X!`` the kit sends X and the CUT must refuse it (4xx, state unchanged). ``SIGNAL`` is the
trigger that makes a consumer under test start. Message names: ``REQ`` ContractRequest,
``OFFER``, ``ACCEPT`` (event ACCEPTED), ``AGREE``, ``VERIFY``, ``FINAL`` (event FINALIZED),
``TERM`` (negotiation termination), ``TREQ`` TransferRequest, ``START``, ``SUSP``, ``COMPL``,
``TTERM`` (transfer termination), ``METADATA``, ``CATALOG``, ``DATASET``.

The table was derived from ``shared/dsp/tck/dsp-tck-2025-1-scenarios.json`` (responses left
out; CN:01-03 ends at FINALIZED, as the kit's code does — its diagram adds a termination it
never sends); ``tests/connector/interop/test_kit.py`` derives it again and compares.

``KitConfig`` reads the kit's own properties file (``dataspacetck.*`` keys and per-test seed
keys such as ``CN_01_01_DATASETID``), so a file written for the genuine kit configures this
harness too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: The kit's configuration keys the harness reads (see TCK.md for what each means).
KEY_CONNECTOR_URL = "dataspacetck.dsp.connector.http.url"
KEY_BASE_URL = "dataspacetck.dsp.connector.http.base.url"
KEY_AGENT_ID = "dataspacetck.dsp.connector.agent.id"
KEY_NEGOTIATION_TRIGGER = "dataspacetck.dsp.connector.negotiation.initiate.url"
KEY_TRANSFER_TRIGGER = "dataspacetck.dsp.connector.transfer.initiate.url"
KEY_DEFAULT_WAIT = "dataspacetck.dsp.default.wait"
KEY_CALLBACK_ADDRESS = "dataspacetck.callback.address"
KEY_HOST = "dataspacetck.host"
KEY_PORT = "dataspacetck.port"

_TABLE = """
MET:01-01 | provider | positive | -
    >METADATA
    # Verify metadata request
CAT:01-01 | provider | positive | datasetid=CAT0101
    >CATALOG
    # Verify catalog request
CAT:01-02 | provider | positive | datasetid=CAT0102
    >DATASET
    # Verify dataset request
CAT:01-03 | provider | negative | datasetid=CAT0103
    >DATASET
    # Verify dataset request not found
CN:01-01 | provider | positive | datasetid=ACN0101 offerid=CD123:ACN0101:456
    >REQ <OFFER >TERM
    # Verify contract request, offer received, consumer terminated
CN:01-02 | provider | positive | datasetid=ACN0102 offerid=CD123:ACN0102:456
    >REQ <OFFER >REQ <TERM
    # Verify contract request, offer received, consumer counter-offer, provider terminated
CN:01-03 | provider | positive | datasetid=ACN0103 offerid=CD123:ACN0103:456
    >REQ <OFFER >ACCEPT <AGREE >VERIFY <FINAL
    # Verify contract request, offer received, consumer accepted, provider agreement, consumer
    # verified, provider finalized
CN:01-04 | provider | positive | datasetid=ACN0104 offerid=CD123:ACN0104:456
    >REQ <AGREE >VERIFY <FINAL
    # Verify contract request, provider agreement, consumer verified, provider finalized
CN:02-01 | provider | positive | datasetid=ACN0201 offerid=CD123:ACN0201:456
    >REQ <TERM
    # Verify contract request, provider terminated
CN:02-02 | provider | positive | datasetid=ACN0202 offerid=CD123:ACN0202:456
    >REQ >TERM
    # Verify contract request, consumer terminated
CN:02-03 | provider | positive | datasetid=ACN0203 offerid=CD123:ACN0203:456
    >REQ <AGREE >TERM
    # Verify contract request, provider agreement, consumer terminated
CN:02-04 | provider | positive | datasetid=ACN0204 offerid=CD123:ACN0204:456
    >REQ <OFFER >TERM
    # Verify contract request, offer received, consumer terminated
CN:02-05 | provider | positive | datasetid=ACN0205 offerid=CD123:ACN0205:456
    >REQ <OFFER <TERM
    # Verify contract request, offer received, provider terminated
CN:02-06 | provider | positive | datasetid=ACN0206 offerid=CD123:ACN0206:456
    >REQ <OFFER >ACCEPT <TERM
    # Verify contract request, offer received, consumer accepted, provider terminated
CN:02-07 | provider | positive | datasetid=ACN0207 offerid=CD123:ACN0207:456
    >REQ <AGREE >VERIFY <TERM
    # Verify contract request, provider agreement, consumer verified, provider terminated
CN:03-01 | provider | negative | datasetid=ACN0301 offerid=CD123:ACN0301:456
    >REQ <AGREE >VERIFY <FINAL >TERM!
    # Verify contract request, provider agreement, consumer verified, provider finalized,
    # invalid consumer terminated
CN:03-02 | provider | negative | datasetid=ACN0302 offerid=CD123:ACN0302:456
    >REQ <OFFER >VERIFY!
    # Verify contract request, offer received, invalid consumer verified
CN:03-03 | provider | negative | datasetid=ACN0303 offerid=CD123:ACN0303:456
    >REQ <OFFER >ACCEPT >VERIFY!
    # Verify contract request, offer received, consumer accepted, illegal consumer verified
CN:03-04 | provider | negative | datasetid=ACN0304 offerid=CD123:ACN0304:456
    >REQ <OFFER >REQ >REQ!
    # Verify contract request, offer received, consumer counter-offer (x2), provider
    # terminated
CN_C:01-01 | consumer | positive | datasetid=ACNC0101
    >SIGNAL <REQ >OFFER <ACCEPT >AGREE <VERIFY >FINAL
    # Verify contract request, offer received, consumer accepted, provider agreed, consumer
    # verified, provider finalized
CN_C:01-02 | consumer | positive | datasetid=ACNC0102
    >SIGNAL <REQ >OFFER <REQ >TERM
    # Verify contract request, offer received, consumer counter-offer, provider terminated
CN_C:01-03 | consumer | positive | datasetid=ACNC0103
    >SIGNAL <REQ >OFFER <TERM
    # Verify contract request, offer received, consumer terminated
CN_C:01-04 | consumer | positive | datasetid=ACNC0104
    >SIGNAL <REQ >AGREE <VERIFY >FINAL
    # Verify contract request, provider agreement, consumer verified, provider finalized
CN_C:02-01 | consumer | positive | datasetid=ACNC0201
    >SIGNAL <REQ >TERM
    # Verify contract request, provider terminated
CN_C:02-02 | consumer | positive | datasetid=ACNC0202
    >SIGNAL <REQ <TERM
    # Verify contract request, consumer terminated
CN_C:02-03 | consumer | positive | datasetid=ACNC0203
    >SIGNAL <REQ >AGREE <TERM
    # Verify contract request, provider agreement, consumer terminated
CN_C:02-04 | consumer | positive | datasetid=ACNC0204
    >SIGNAL <REQ >OFFER >TERM
    # Verify contract request, offer received, provider terminated
CN_C:02-05 | consumer | positive | datasetid=ACNC0205
    >SIGNAL <REQ >OFFER <ACCEPT >TERM
    # Verify contract request, offer received, consumer accepted, provider terminated
CN_C:02-06 | consumer | positive | datasetid=ACNC0206
    >SIGNAL <REQ >AGREE <VERIFY >TERM
    # Verify contract request, provider agreement, consumer verified, provider terminated
CN_C:03-01 | consumer | negative | datasetid=ACNC0301
    >SIGNAL <REQ >FINAL!
    # Verify contract request, invalid provider finalized
CN_C:03-02 | consumer | negative | datasetid=ACNC0302
    >SIGNAL <REQ >OFFER >AGREE!
    # Verify contract request, offer received, invalid provider agreed
CN_C:03-03 | consumer | negative | datasetid=ACNC0303
    >SIGNAL <REQ >OFFER >FINAL!
    # Verify contract request, offer received, invalid provider finalized
CN_C:03-04 | consumer | negative | datasetid=ACNC0304
    >SIGNAL <REQ >OFFER <ACCEPT >FINAL!
    # Verify contract request, offer received, consumer accepted, invalid provider finalized
CN_C:03-05 | consumer | negative | datasetid=ACNC0305
    >SIGNAL <REQ >OFFER <ACCEPT >OFFER!
    # Verify contract request, offer received, consumer accepted, invalid provider offer
CN_C:03-06 | consumer | negative | datasetid=ACNC0306
    >SIGNAL <REQ >OFFER <ACCEPT >AGREE >FINAL!
    # Verify contract request, offer received, consumer accepted, provider agreed, invalid
    # provider finalized
TP:01-01 | provider | positive | agreementid=ATP0101 format=HttpData-PULL
    >TREQ <START <TTERM
    # Verify transfer request, provider started, provider terminated
TP:01-02 | provider | positive | agreementid=ATP0102 format=HttpData-PULL
    >TREQ <START <COMPL
    # Verify transfer request, provider started, provider completed
TP:01-03 | provider | positive | agreementid=ATP0103 format=HttpData-PULL
    >TREQ <START <SUSP <TTERM
    # Verify transfer request, provider started, provider suspended, provider terminated
TP:01-04 | provider | positive | agreementid=ATP0104 format=HttpData-PULL
    >TREQ <START <SUSP <START <COMPL
    # Verify transfer request, provider started, provider suspended, provider started,
    # provider completed
TP:01-05 | provider | positive | agreementid=ATP0105 format=HttpData-PULL
    >TREQ <TTERM
    # Verify transfer request, provider terminated
TP:02-01 | provider | positive | agreementid=ATP0201 format=HttpData-PULL
    >TREQ <START >TTERM
    # Verify transfer request, provider started, consumer terminated
TP:02-02 | provider | positive | agreementid=ATP0202 format=HttpData-PULL
    >TREQ <START >COMPL
    # Verify transfer request, provider started, consumer completed
TP:02-03 | provider | positive | agreementid=ATP0203 format=HttpData-PULL
    >TREQ <START >SUSP >TTERM
    # Verify transfer request, provider started, consumer suspended, consumer terminated
TP:02-04 | provider | positive | agreementid=ATP0204 format=HttpData-PULL
    >TREQ <START >SUSP >START >COMPL
    # Verify transfer request, provider started, consumer suspended, consumer started,
    # consumer completed
TP:02-05 | provider | positive | agreementid=ATP0205 format=HttpData-PULL
    >TREQ >TTERM
    # Verify transfer request, consumer terminated
TP:03-01 | provider | negative | agreementid=ATP0301 format=HttpData-PULL
    >TREQ >COMPL!
    # Verify transfer request, consumer completed
TP:03-02 | provider | negative | agreementid=ATP0302 format=HttpData-PULL
    >TREQ >SUSP!
    # Verify transfer request, consumer suspended
TP:03-03 | provider | negative | agreementid=ATP0303 format=HttpData-PULL
    >TREQ <START >SUSP >COMPL!
    # Verify transfer request, provider started, consumer suspended, consumer completed
TP:03-04 | provider | negative | agreementid=ATP0304 format=HttpData-PULL
    >TREQ <START >TTERM >START!
    # Verify transfer request, provider started, consumer terminated, consumer started
TP:03-05 | provider | negative | agreementid=ATP0305 format=HttpData-PULL
    >TREQ <START >TTERM >SUSP!
    # Verify transfer request, provider started, consumer terminated, consumer suspended
TP:03-06 | provider | negative | agreementid=ATP0306 format=HttpData-PULL
    >TREQ <START >TTERM >COMPL!
    # Verify transfer request, provider started, consumer terminated, consumer completed
TP_C:01-01 | consumer | positive | agreementid=ATPC0101 format=HttpData-PULL
    >SIGNAL <TREQ >START >TTERM
    # Verify transfer request, provider started, provider terminated
TP_C:01-02 | consumer | positive | agreementid=ATPC0102 format=HttpData-PULL
    >SIGNAL <TREQ >START >COMPL
    # Verify transfer request, provider started, provider completed
TP_C:01-03 | consumer | positive | agreementid=ATPC0103 format=HttpData-PULL
    >SIGNAL <TREQ >START >SUSP >TTERM
    # Verify transfer request, provider started, provider suspended, provider terminated
TP_C:01-04 | consumer | positive | agreementid=ATPC0104 format=HttpData-PULL
    >SIGNAL <TREQ >START >SUSP >START >COMPL
    # Verify transfer request, provider started, provider suspended, provider started,
    # provider completed
TP_C:01-05 | consumer | positive | agreementid=ATPC0104 format=HttpData-PULL
    >SIGNAL <TREQ >TTERM
    # Verify transfer request, provider terminated
TP_C:02-01 | consumer | positive | agreementid=ATPC0201 format=HttpData-PULL
    >SIGNAL <TREQ >START <TTERM
    # Verify transfer request, provider started, consumer terminated
TP_C:02-02 | consumer | positive | agreementid=ATPC0202 format=HttpData-PULL
    >SIGNAL <TREQ >START <COMPL
    # Verify transfer request, provider started, consumer completed
TP_C:02-03 | consumer | positive | agreementid=ATPC0203 format=HttpData-PULL
    >SIGNAL <TREQ >START <SUSP <TTERM
    # Verify transfer request, provider started, consumer suspended, consumer terminated
TP_C:02-04 | consumer | positive | agreementid=ATPC0204 format=HttpData-PULL
    >SIGNAL <TREQ >START <SUSP <START <COMPL
    # Verify transfer request, provider started, consumer suspended, consumer started,
    # consumer completed
TP_C:02-05 | consumer | positive | agreementid=ATPC0205 format=HttpData-PULL
    >SIGNAL <TREQ <TTERM
    # Verify transfer request, consumer terminated
TP_C:03-01 | consumer | negative | agreementid=ATPC0301 format=HttpData-PULL
    >SIGNAL <TREQ >COMPL!
    # Verify transfer request, provider completed
TP_C:03-02 | consumer | negative | agreementid=ATPC0302 format=HttpData-PULL
    >SIGNAL <TREQ >SUSP!
    # Verify transfer request, provider suspended
TP_C:03-03 | consumer | negative | agreementid=ATPC0303 format=HttpData-PULL
    >SIGNAL <TREQ >START >SUSP >COMPL!
    # Verify transfer request, provider started, provider suspended, provider completed
TP_C:03-04 | consumer | negative | agreementid=ATPC0304 format=HttpData-PULL
    >SIGNAL <TREQ >START >TTERM >START!
    # Verify transfer request, provider started, provider terminated, provider started
TP_C:03-05 | consumer | negative | agreementid=ATPC0305 format=HttpData-PULL
    >SIGNAL <TREQ >START >TTERM >SUSP!
    # Verify transfer request, provider started, provider terminated, provider suspended
TP_C:03-06 | consumer | negative | agreementid=ATPC0306 format=HttpData-PULL
    >SIGNAL <TREQ >START >TTERM >COMPL!
    # Verify transfer request, provider started, provider terminated, provider completed
"""


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    role: str  # of the connector under test: "provider" or "consumer"
    negative: bool
    seeds: Mapping[str, str]
    steps: tuple[str, ...]
    title: str

    @property
    def group(self) -> str:
        return self.id.split(":", 1)[0]

    @property
    def seed_prefix(self) -> str:
        """The kit's property prefix of this test's seeds: ``CN:01-01`` → ``CN_01_01_``."""
        return self.id.replace(":", "_").replace("-", "_") + "_"


def _parse(table: str) -> tuple[Scenario, ...]:
    scenarios: list[Scenario] = []
    head: list[str] | None = None
    steps: tuple[str, ...] = ()
    title: list[str] = []

    def flush() -> None:
        if head is not None:
            sid, role, polarity, seed_text = head
            seeds = dict(item.split("=", 1) for item in seed_text.split() if item != "-")
            scenarios.append(Scenario(sid, role, polarity == "negative", seeds, steps,
                                      " ".join(title)))

    for line in table.strip().splitlines():
        if not line.startswith(" "):
            flush()
            head, steps, title = [part.strip() for part in line.split("|")], (), []
        elif line.strip().startswith("#"):
            title.append(line.strip()[1:].strip())
        else:
            steps = tuple(line.split())
    flush()
    return tuple(scenarios)


SCENARIOS: tuple[Scenario, ...] = _parse(_TABLE)


def parse_properties(text: str) -> dict[str, str]:
    """Java ``.properties`` as the kit reads them (``key=value`` / ``key: value``, ``#``/``!``
    comments; no line continuations, which its sample does not use)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        separator = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if separator < 0:
            values[line] = ""
            continue
        values[line[:separator].strip()] = line[separator + 1:].strip()
    return values


@dataclass(frozen=True, slots=True)
class KitConfig:
    """The kit's properties (``--tck-properties``); seeds default to the kit's sample values."""

    properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> KitConfig:
        return cls(parse_properties(path.read_text(encoding="utf-8")))

    def get(self, key: str) -> str | None:
        return self.properties.get(key)

    def seed(self, scenario: Scenario, name: str) -> str:
        """A seed id: ``<TEST>_<NAME>`` from the properties, else the sample value."""
        configured = self.properties.get(scenario.seed_prefix + name.upper())
        if configured:
            return configured
        if name in scenario.seeds:
            return scenario.seeds[name]
        if name == "offerid" and "datasetid" in scenario.seeds:
            return f"CD123:{self.seed(scenario, 'datasetid')}:456"
        return "HttpData-PULL" if name == "format" else ""

    def wait_s(self, default: float) -> float:
        value = self.properties.get(KEY_DEFAULT_WAIT)
        try:
            return float(value) / 1000 if value else default
        except ValueError:
            return default
