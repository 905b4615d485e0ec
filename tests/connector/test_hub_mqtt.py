"""The MQTT source against real Mosquitto brokers.

Most tests use the machine's broker on 127.0.0.1:1883 (skipped without it, failed under
``BPC_REQUIRE_SERVICES=1``). Each test uses its own hub DID (so its own topics), client ids and
share group, and forgets its persistent sessions at the end, so runs do not see each other.
Credentials and TLS need a broker configured for them: those tests start a private Mosquitto
on free loopback ports with a password file and a TLS listener made here.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import base58
import pytest
from pydantic import ValidationError

from connector.demo_dataspace import free_port
from connector.plugins.hub.sources.base import (
    PayloadTooLarge,
    Source,
    SourceError,
    SourceMessage,
    TopicError,
    parse_topic,
)
from connector.plugins.hub.sources.mqtt import (
    MqttPublisher,
    MqttSettings,
    MqttSource,
    MqttSourceError,
    forget_session,
)
from connector.plugins.hub.sources.replay import JsonlRecorder, JsonlReplaySource

BROKER_HOST, BROKER_PORT = "127.0.0.1", 1883
WAIT = 10.0  # generous upper bound for anything the broker should do "at once"


def new_hub() -> str:
    return "did:key:z6Mk" + base58.b58encode(os.urandom(33)).decode()[:44]


def cells(hub: str) -> str:
    return f"bpc/hubs/{hub}/cells/+"


def payload_id(message: SourceMessage) -> int:
    return int(json.loads(message.payload)["id"])


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def broker(require_service: Callable[..., None]) -> None:
    require_service("mosquitto", BROKER_HOST, BROKER_PORT)


@pytest.fixture
async def sessions(broker: None) -> AsyncIterator[Callable[..., MqttSettings]]:
    """Makes settings with a fresh client id; their broker sessions are forgotten afterwards."""
    made: list[MqttSettings] = []

    def make(**overrides: object) -> MqttSettings:
        values: dict[str, object] = {
            "host": BROKER_HOST, "port": BROKER_PORT, "client_id": f"t-{uuid.uuid4().hex[:12]}",
            "reconnect_initial_s": 0.05, "reconnect_max_s": 0.5, "connect_timeout_s": 5.0}
        values.update(overrides)
        settings = MqttSettings(**values)  # type: ignore[arg-type]
        made.append(settings)
        return settings

    yield make
    for settings in made:
        direct = settings.model_copy(update={"host": BROKER_HOST, "port": BROKER_PORT})
        with contextlib.suppress(MqttSourceError):
            await forget_session(direct)


async def publish(messages: list[tuple[str, bytes | str]], **overrides: object) -> None:
    settings = MqttSettings(host=BROKER_HOST, port=BROKER_PORT,
                            **overrides)  # type: ignore[arg-type]
    async with MqttPublisher(settings) as publisher:
        await publisher.publish_many(messages)


def numbered(topic: Callable[[int], str], count: int,
             start: int = 0) -> list[tuple[str, bytes | str]]:
    return [(topic(i), json.dumps({"id": i})) for i in range(start, start + count)]


async def collect(source: MqttSource, count: int, *, ack: bool = True,
                  timeout: float = WAIT) -> list[SourceMessage]:
    """The next ``count`` messages (acked unless told otherwise)."""
    got: list[SourceMessage] = []

    async def run() -> None:
        async for message in source.messages():
            got.append(message)
            if ack:
                await message.ack()
            if len(got) == count:
                return

    await asyncio.wait_for(run(), timeout)
    return got


async def nothing_more(source: MqttSource, within: float = 0.3) -> None:
    iterator = source.messages()
    with pytest.raises(TimeoutError):
        extra = await asyncio.wait_for(anext(iterator), within)
        pytest.fail(f"unexpected message on {extra.topic}: {extra.payload!r}")


# -- topics and settings (no broker) -----------------------------------------------------


def test_parse_topic_reads_the_scheme() -> None:
    hub = new_hub()
    assert parse_topic(f"bpc/hubs/{hub}/cells/7") == (hub, 7, "cell")
    assert parse_topic(f"bpc/hubs/{hub}/cells/0").position == 0
    hub_id, position, kind = parse_topic(f"bpc/hubs/{hub}/batch")
    assert (hub_id, position, kind) == (hub, None, "batch")


@pytest.mark.parametrize("topic", [
    "bpc/hubs/{hub}/cells/+",           # wildcard
    "bpc/hubs/+/batch",
    "bpc/hubs/{hub}/#",
    "bpc/hubs/did:web:example.com/batch",   # not a did:key
    "bpc/hubs/did:key:zO0Il/batch",         # not base58
    "bpc/hubs/{hub}/cells/-1",
    "bpc/hubs/{hub}/cells/07",              # not canonical: one cell, one topic
    "bpc/hubs/{hub}/cells/65536",
    "bpc/hubs/{hub}/cells/x",
    "bpc/hubs/{hub}/cells/1/extra",
    "bpc/hubs/{hub}/nonsense",
    "bpc/hubs/{hub}",
    "other/hubs/{hub}/batch",
    "",
])
def test_parse_topic_refuses_everything_else(topic: str) -> None:
    with pytest.raises(TopicError) as caught:
        parse_topic(topic.format(hub=new_hub()))
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, SourceError)


@pytest.mark.parametrize(("overrides", "complaint"), [
    ({"group": "a/b"}, "group"),
    ({"group": "a+"}, "group"),
    ({"topics": ("bpc/hubs/#/batch",)}, "'#'"),
    ({"topics": ("bpc/hubs/x+/batch",)}, "'\\+'"),
    ({"topics": ("$share/g/bpc/hubs/+/batch",)}, "group"),
    ({"topics": ()}, "at least one"),
    ({"password": "secret"}, "without username"),
    ({"client_key": "/k.pem"}, "without client_cert"),
    ({"client_id": "has space"}, "client_id"),
    ({"max_inflight": 0}, "max_inflight"),
    ({"port": 0}, "port"),
])
def test_settings_refuse_what_cannot_work(overrides: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        MqttSettings(**overrides)  # type: ignore[arg-type]


def test_settings_share_group_and_secret() -> None:
    settings = MqttSettings(group="bridge", username="u", password="p4ss")  # type: ignore[arg-type]
    assert settings.subscriptions() == ["$share/bridge/bpc/hubs/+/cells/+",
                                        "$share/bridge/bpc/hubs/+/batch"]
    assert "p4ss" not in repr(settings)
    assert not settings.uses_tls and MqttSettings(ca_file="/x").uses_tls  # type: ignore[arg-type]


def test_a_source_needs_a_stable_client_id() -> None:
    with pytest.raises(MqttSourceError, match="client_id is required"):
        MqttSource(MqttSettings())


# -- delivery through the machine's broker -----------------------------------------------


async def test_receives_everything_in_order_per_topic_and_acks(sessions) -> None:
    hub = new_hub()
    settings = sessions(topics=(cells(hub), f"bpc/hubs/{hub}/batch"))
    async with MqttSource(settings) as source:
        assert isinstance(source, Source)
        topics = [f"bpc/hubs/{hub}/cells/{p}" for p in range(3)] + [f"bpc/hubs/{hub}/batch"]
        await publish(numbered(lambda i: topics[i % 4], 300))
        got = await collect(source, 300)
        per_topic: dict[str, list[int]] = {}
        for message in got:
            per_topic.setdefault(message.topic, []).append(payload_id(message))
        assert sorted(per_topic) == sorted(topics)
        for ids in per_topic.values():
            assert ids == sorted(ids) and len(ids) == 75
        assert all(m.redelivered is False and m.acked for m in got)
        assert source.lag.unacked == 0 and source.lag.acked_total == 300
        assert source.counters["received"] == 300 and source.counters["acked"] == 300
        await nothing_more(source)


async def test_unacked_messages_come_back_after_a_restart_acked_ones_do_not(sessions) -> None:
    hub = new_hub()
    settings = sessions(topics=(cells(hub),))
    first = MqttSource(settings)
    await first.start()
    await publish(numbered(lambda i: f"bpc/hubs/{hub}/cells/1", 10))
    got = await collect(first, 10, ack=False)
    for message in got[:4]:
        await message.ack()
    await asyncio.sleep(0.1)
    await first.close()  # clean DISCONNECT: the session (and 6 unacked messages) stays
    await got[5].ack()   # too late: its connection is gone, nothing is sent
    assert first.counters["stale_acks"] == 1

    await publish(numbered(lambda i: f"bpc/hubs/{hub}/cells/1", 2, start=10))  # while away
    async with MqttSource(settings) as second:
        again = await collect(second, 8)
        assert [payload_id(m) for m in again] == [4, 5, 6, 7, 8, 9, 10, 11]
        assert all(m.redelivered for m in again[:6])
        assert not any(m.redelivered for m in again[6:])
        assert second.counters["redelivered"] == 6
        await nothing_more(second)

    async with MqttSource(settings) as third:  # all acked now: nothing left in the session
        await nothing_more(third)


async def test_backpressure_holds_max_inflight_and_the_broker_buffers_the_rest(sessions) -> None:
    hub = new_hub()
    settings = sessions(topics=(cells(hub),), max_inflight=10)
    async with MqttSource(settings) as source:
        await publish(numbered(lambda i: f"bpc/hubs/{hub}/cells/{i % 5}", 80))
        held = await collect(source, 10, ack=False)
        await asyncio.sleep(0.4)  # a slow signer: nothing acked, nothing more arrives
        lag = source.lag
        assert lag.unacked == 10 and lag.received_total == 10
        assert lag.oldest_unacked_age_s >= 0.3
        await nothing_more(source, within=0.2)

        for message in held:
            await message.ack()
        rest = []
        async for message in source.messages():  # acking as it goes: the rest flows
            rest.append(message)
            assert source.lag.unacked <= 10
            await message.ack()
            if len(rest) == 70:
                break
        ids = [payload_id(m) for m in held + rest]
        assert sorted(ids) == list(range(80))  # none lost, none twice
        assert source.lag.unacked == 0


async def test_two_workers_in_a_share_group_split_the_stream_exactly_once(sessions) -> None:
    hub = new_hub()
    group = f"g{uuid.uuid4().hex[:10]}"
    workers = [MqttSource(sessions(topics=(cells(hub),), group=group, max_inflight=20))
               for _ in range(2)]
    for worker in workers:
        await worker.start()
    seen: list[list[int]] = [[], []]
    total = 500
    done = asyncio.Event()

    async def work(index: int) -> None:
        async for message in workers[index].messages():
            seen[index].append(payload_id(message))
            await message.ack()
            if len(seen[0]) + len(seen[1]) >= total:
                done.set()

    tasks = [asyncio.create_task(work(i)) for i in range(2)]
    try:
        await publish(numbered(lambda i: f"bpc/hubs/{hub}/cells/{i % 16}", total))
        await asyncio.wait_for(done.wait(), WAIT)
        await asyncio.sleep(0.2)  # a duplicate would show up now
    finally:
        for task in tasks:
            task.cancel()
        for worker in workers:
            await worker.close()
    everything = seen[0] + seen[1]
    assert len(everything) == total and sorted(everything) == list(range(total))
    assert seen[0] and seen[1], "the broker gave one worker everything"


class DroppableProxy:
    """A TCP forwarder to the broker whose connections a test cuts, as a network failure would
    (no DISCONNECT, both sides reset)."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def outage(self) -> None:
        """Cut every connection and refuse new ones until ``start()`` again."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        self.drop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(BROKER_HOST, BROKER_PORT)
        self._writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def drop(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()


async def test_survives_a_dropped_connection_and_gets_the_unacked_again(sessions) -> None:
    hub = new_hub()
    proxy = DroppableProxy()
    await proxy.start()
    settings = sessions(topics=(cells(hub),), port=proxy.port)
    try:
        async with MqttSource(settings) as source:
            await publish(numbered(lambda i: f"bpc/hubs/{hub}/cells/2", 10))
            got = await collect(source, 10, ack=False)
            for message in got[:6]:
                await message.ack()
            await asyncio.sleep(0.2)  # the PUBACKs reach the broker
            proxy.drop()
            deadline = time.monotonic() + WAIT
            while source.counters["connects"] < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert source.counters["connection_losses"] == 1 and source.connected
            # the lost connection's 4 unacked messages count once: as redelivered ones
            assert source.lag.unacked <= 4

            await got[7].ack()  # acked after its connection died: not sent, broker redelivers
            assert source.counters["stale_acks"] == 1

            await publish(numbered(lambda i: f"bpc/hubs/{hub}/cells/2", 3, start=10))
            after = await collect(source, 7)
            assert sorted(payload_id(m) for m in after) == [6, 7, 8, 9, 10, 11, 12]
            assert {payload_id(m) for m in after if m.redelivered} == {6, 7, 8, 9}
            await nothing_more(source)
    finally:
        await proxy.close()


async def test_keeps_retrying_through_an_outage_with_backoff(
    sessions, caplog: pytest.LogCaptureFixture,
) -> None:
    hub = new_hub()
    proxy = DroppableProxy()
    await proxy.start()
    settings = sessions(topics=(cells(hub),), port=proxy.port, reconnect_initial_s=0.02,
                        reconnect_max_s=0.16)
    try:
        async with MqttSource(settings) as source:
            await proxy.outage()
            await asyncio.sleep(0.6)  # attempts at ~0.02, 0.04, 0.08, 0.16, 0.16 … all refused
            assert not source.connected
            failures = source.counters["connect_failures"]
            assert 3 <= failures <= 12, failures  # backing off, not spinning
            assert "next attempt in about" in caplog.text

            await publish(numbered(lambda i: f"bpc/hubs/{hub}/cells/0", 3))  # while it is away
            await proxy.start()
            [*got] = await collect(source, 3)  # the consumer just keeps iterating
            assert [payload_id(m) for m in got] == [0, 1, 2]
            assert source.counters["connects"] == 2
    finally:
        await proxy.close()


async def test_recording_a_live_stream_replays_it(sessions, tmp_path: Path) -> None:
    hub = new_hub()
    async with MqttSource(sessions(topics=(cells(hub),))) as source:
        await publish([*numbered(lambda i: f"bpc/hubs/{hub}/cells/{i}", 5),
                       (f"bpc/hubs/{hub}/cells/9", b"\x00binary\xff")])
        with JsonlRecorder(tmp_path / "live.jsonl") as recorder:
            assert await asyncio.wait_for(recorder.record(source, limit=6), WAIT) == 6
    replayed = [m async for m in JsonlReplaySource(tmp_path / "live.jsonl").messages()]
    assert replayed[-1].payload == b"\x00binary\xff"
    assert [payload_id(m) for m in replayed[:5]] == [0, 1, 2, 3, 4]


# -- bad inputs ----------------------------------------------------------------------------


async def test_topics_outside_the_scheme_and_oversized_payloads_are_rejected_and_acked(
    sessions,
) -> None:
    hub = new_hub()
    settings = sessions(topics=(f"bpc/hubs/{hub}/#",), max_payload_bytes=64)
    rejected: list[tuple[str, SourceError]] = []

    async def park(message: SourceMessage, problem: SourceError) -> None:
        rejected.append((message.topic, problem))

    async with MqttSource(settings, on_reject=park) as source:
        await publish([
            (f"bpc/hubs/{hub}/cells/1", json.dumps({"id": 1})),
            (f"bpc/hubs/{hub}/nonsense", json.dumps({"id": 2})),
            (f"bpc/hubs/{hub}/cells/x", json.dumps({"id": 3})),
            (f"bpc/hubs/{hub}/cells/2", json.dumps({"id": 4, "pad": "x" * 100})),
            (f"bpc/hubs/{hub}/batch", json.dumps({"id": 5})),
        ])
        got = await collect(source, 2)
        assert [payload_id(m) for m in got] == [1, 5]
        assert source.counters["rejected_topic"] == 2
        assert source.counters["rejected_size"] == 1
        kinds = sorted(type(problem).__name__ for _, problem in rejected)
        assert kinds == ["PayloadTooLarge", "TopicError", "TopicError"]
        too_large = next(p for _, p in rejected if isinstance(p, PayloadTooLarge))
        assert too_large.size > 64 and too_large.limit == 64
        assert source.lag.unacked == 0  # the rejected ones were acknowledged too
    async with MqttSource(settings) as again:  # …so they do not come back
        await nothing_more(again)


async def test_an_unreachable_broker_is_a_clear_error_at_start(sessions) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    source = MqttSource(sessions(port=closed_port))
    with pytest.raises(MqttSourceError, match=f"127.0.0.1:{closed_port}.*refused"):
        await source.start()


async def test_tls_against_a_plain_listener_is_a_clear_error_at_start(sessions) -> None:
    source = MqttSource(sessions(tls=True, connect_timeout_s=3.0))
    with pytest.raises(MqttSourceError, match=r"cannot connect.*(SSL|EOF|TLS)"):
        await source.start()


async def test_a_missing_ca_file_is_a_clear_error_at_start(sessions, tmp_path: Path) -> None:
    source = MqttSource(sessions(ca_file=tmp_path / "nope.pem"))
    with pytest.raises(MqttSourceError, match=r"ca_file .*nope\.pem"):
        await source.start()


# -- credentials and TLS (a private broker) ------------------------------------------------


def _write_pki(folder: Path) -> None:
    """A CA, a server certificate for DNS:localhost only, a client certificate, and a stranger
    CA that signed nothing here."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def save(stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{stem}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    def ca(stem: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(stem)).issuer_name(name(stem))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                             False, False), critical=True)
                .sign(key, hashes.SHA256()))
        save(stem, key, cert)
        return key, cert

    def leaf(stem: str, issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
             usage: x509.ObjectIdentifier, san: list[x509.GeneralName]) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(stem))
                .issuer_name(issuer[1].subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(san), critical=False)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .sign(issuer[0], hashes.SHA256()))
        save(stem, key, cert)

    authority = ca("ca")
    ca("stranger-ca")
    leaf("server", authority, ExtendedKeyUsageOID.SERVER_AUTH, [x509.DNSName("localhost")])
    leaf("client", authority, ExtendedKeyUsageOID.CLIENT_AUTH,
         [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])


class PrivateBroker:
    def __init__(self, folder: Path, password_port: int, tls_port: int) -> None:
        self.folder = folder
        self.password_port = password_port
        self.tls_port = tls_port


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    """Mosquitto with a password listener and a TLS listener that requires client certs."""
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/bin")
    passwd = shutil.which("mosquitto_passwd")
    if not binary or not passwd:
        message = "the mosquitto binaries are not installed"
        if os.environ.get("BPC_REQUIRE_SERVICES", "").strip() not in ("", "0"):
            pytest.fail(f"{message}, and BPC_REQUIRE_SERVICES=1 requires them", pytrace=False)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("mosquitto")
    _write_pki(folder)
    subprocess.run([passwd, "-b", "-c", str(folder / "passwd"), "bridge", "right-password"],
                   check=True, capture_output=True)
    broker = PrivateBroker(folder, free_port(), free_port())
    (folder / "mosquitto.conf").write_text(f"""
per_listener_settings true
persistence false
log_dest stderr
{"user root" if os.geteuid() == 0 else ""}
listener {broker.password_port} 127.0.0.1
allow_anonymous false
password_file {folder / "passwd"}
listener {broker.tls_port} 127.0.0.1
allow_anonymous true
cafile {folder / "ca.pem"}
certfile {folder / "server.pem"}
keyfile {folder / "server.key"}
require_certificate true
""")
    log = (folder / "mosquitto.log").open("wb")
    process = subprocess.Popen([binary, "-c", str(folder / "mosquitto.conf")],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        for port in (broker.password_port, broker.tls_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        error = (folder / "mosquitto.log").read_text(errors="replace")
                        pytest.fail(f"private mosquitto did not start: {error}")
                    time.sleep(0.02)
        yield broker
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _private(broker: PrivateBroker, **overrides: object) -> MqttSettings:
    values: dict[str, object] = {"host": "127.0.0.1", "client_id": f"t-{uuid.uuid4().hex[:12]}",
                                 "connect_timeout_s": 5.0, "session_expiry_s": 0}
    values.update(overrides)
    return MqttSettings(**values)  # type: ignore[arg-type]


async def test_wrong_credentials_are_a_clear_error_at_start(private_broker: PrivateBroker) -> None:
    port = private_broker.password_port
    wrong = MqttSource(_private(private_broker, port=port, username="bridge", password="nope"))
    with pytest.raises(MqttSourceError, match=r"refused the connection.*(user name|password|"
                                              r"authori)"):
        await wrong.start()
    anonymous = MqttSource(_private(private_broker, port=port))
    with pytest.raises(MqttSourceError, match="refused the connection"):
        await anonymous.start()
    right = MqttSource(_private(private_broker, port=port, username="bridge",
                                password="right-password"))
    await right.start()
    assert right.connected
    await right.close()


async def test_tls_with_client_certificate(private_broker: PrivateBroker) -> None:
    folder, port = private_broker.folder, private_broker.tls_port
    tls = {"host": "localhost", "port": port, "ca_file": folder / "ca.pem",
           "client_cert": folder / "client.pem", "client_key": folder / "client.key"}
    hub = new_hub()
    async with MqttSource(_private(private_broker, topics=(cells(hub),), **tls)) as source:
        settings = MqttSettings(**tls)  # type: ignore[arg-type]
        async with MqttPublisher(settings) as publisher:
            await publisher.publish(f"bpc/hubs/{hub}/cells/4", json.dumps({"id": 44}))
        [message] = await collect(source, 1)
        assert payload_id(message) == 44


@pytest.mark.parametrize(("change", "complaint"), [
    ({"ca_file": "stranger-ca.pem"}, "certificate verify failed"),
    ({"host": "127.0.0.1"}, "(?i)hostname|IP address mismatch|doesn't match"),
    ({"client_cert": None, "client_key": None}, "(?i)certificate|closed the connection"),
])
async def test_tls_misconfiguration_is_a_clear_error_at_start(
    private_broker: PrivateBroker, change: dict[str, object], complaint: str,
) -> None:
    folder = private_broker.folder
    tls: dict[str, object] = {"host": "localhost", "port": private_broker.tls_port,
                              "ca_file": folder / "ca.pem", "client_cert": folder / "client.pem",
                              "client_key": folder / "client.key"}
    tls.update({key: folder / value if isinstance(value, str) and key != "host" else value
                for key, value in change.items()})
    source = MqttSource(_private(private_broker, **tls))
    with pytest.raises(MqttSourceError, match=complaint):
        await source.start()


async def test_tls_insecure_skips_only_the_host_name_check(private_broker: PrivateBroker) -> None:
    folder = private_broker.folder
    common = {"host": "127.0.0.1", "port": private_broker.tls_port, "tls_insecure": True,
              "client_cert": folder / "client.pem", "client_key": folder / "client.key"}
    trusted = MqttSource(_private(private_broker, ca_file=folder / "ca.pem", **common))
    await trusted.start()  # the certificate names localhost, not 127.0.0.1: allowed by the flag
    await trusted.close()
    stranger = MqttSource(_private(private_broker, ca_file=folder / "stranger-ca.pem", **common))
    with pytest.raises(MqttSourceError, match="certificate verify failed"):
        await stranger.start()
