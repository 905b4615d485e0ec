"""The hub bridge's MQTT 5 source: QoS 1, persistent session, explicit acknowledgement.

Delivery contract. The source subscribes at QoS 1 with ``clean_start=False`` and a session
expiry interval, so the broker keeps the subscription and every unacknowledged message while a
worker is away. A message is acknowledged (PUBACK) only when the pipeline calls
``message.ack()`` after storing it; a crash, a restart or a dropped connection before that
makes the broker deliver it again (``redelivered=True``), and the store's idempotency by event
id absorbs the duplicate. An ack that arrives after its connection is gone is not sent (the
broker will redeliver anyway, and a stale packet id could acknowledge a different message); it
is counted in ``counters["stale_acks"]``.

Backpressure. At most ``max_inflight`` messages are held unacknowledged. The source says so to
the broker (MQTT 5 Receive Maximum) *and* enforces it itself by not reading the socket while
the limit is reached: Mosquitto before 2.0.13 stops honouring Receive Maximum after the first
PUBACK (eclipse-mosquitto/mosquitto#2306, "various fixes around inflight quota management"),
and this machine runs 2.0.11. While reading is paused the broker keeps the rest — in its
session queue, up to its ``max_queued_messages``/``max_queued_bytes`` (Mosquitto's default of
1000 messages per session must be raised for a bridge; past it Mosquitto drops QoS 1 messages
and logs "Outgoing messages are being dropped"). A signer that acknowledges nothing for about
two keep-alive intervals makes the client miss the broker's PINGRESP and reconnect; the
unacknowledged messages are then redelivered.

Scale-out. With ``group`` set every topic is subscribed as ``$share/<group>/<topic>``: workers
with different ``client_id``s in one group split the stream. Unacknowledged messages stay with
the session of the worker that received them until it reconnects or its session expires.

Rejections. A message whose topic is outside the scheme (``parse_topic``) or whose payload
exceeds ``max_payload_bytes`` is not delivered: it is logged, counted, passed to the optional
``on_reject`` hook (a dead-letter store), and then acknowledged so that it cannot block the
stream or come back after every reconnect.

Why paho-mqtt directly. aiomqtt (2.5) has no manual acknowledgement, drops the DUP flag and
the CONNACK session-present flag, and gives no way to pause reading; doing this through its
private ``_client`` would mean overriding several private methods. paho-mqtt 2 documents an
external-event-loop API (``on_socket_*`` callbacks, ``loop_read``/``loop_write``/``loop_misc``)
and ``manual_ack``; ``_Connection`` drives it from asyncio with public calls only. The
publisher (tests, simulator) is plain aiomqtt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connector.plugins.hub.sources.base import (
    DEFAULT_TOPICS,
    LagSnapshot,
    LagTracker,
    PayloadTooLarge,
    RejectHook,
    SourceError,
    SourceMessage,
    TopicError,
    parse_topic,
)

log = logging.getLogger(__name__)
_paho_log = logging.getLogger(f"{__name__}.paho")

QOS = 1
#: MQTT caps the session expiry interval at 2^32-1 s ("never expires").
MAX_SESSION_EXPIRY_S = 0xFFFFFFFF
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_GROUP = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class MqttSourceError(SourceError):
    """The broker cannot be used: unreachable, TLS failure, refused credentials, subscription
    refused. Raised by ``start()``; after a successful start the source retries instead."""


class MqttSettings(BaseModel):
    """Broker connection of the hub bridge (and of the test/simulator publisher).

    ``client_id`` must be stable per worker: it names the persistent session that holds
    unacknowledged messages across restarts. Two workers must never share one (the broker would
    keep disconnecting one for the other). TLS is on when ``tls`` is set or any TLS file is
    given; ``tls_insecure`` only skips the host-name check, never certificate verification.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    client_id: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    tls_insecure: bool = False
    topics: tuple[str, ...] = DEFAULT_TOPICS
    group: str | None = None
    session_expiry_s: int = Field(86_400, ge=0, le=MAX_SESSION_EXPIRY_S)
    max_inflight: int = Field(100, ge=1, le=65_535)
    max_payload_bytes: int = Field(256 * 1024, ge=1)
    validate_topics: bool = True
    keepalive_s: int = Field(60, ge=5, le=65_535)
    connect_timeout_s: float = Field(10.0, gt=0)
    reconnect_initial_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str | None) -> str | None:
        if value is not None and not _CLIENT_ID.fullmatch(value):
            raise ValueError("client_id: 1-128 characters from A-Z a-z 0-9 . _ : -")
        return value

    @field_validator("group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        if value is not None and not _GROUP.fullmatch(value):
            raise ValueError("group: 1-64 characters from A-Z a-z 0-9 . _ : - (no / + #)")
        return value

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("topics: at least one topic filter")
        for topic in value:
            _check_topic_filter(topic)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key given without client_cert")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s is smaller than reconnect_initial_s")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.tls or any(f is not None for f in (self.ca_file, self.client_cert))

    def subscriptions(self) -> list[str]:
        """The topic filters as subscribed (``$share/<group>/…`` with a group)."""
        if self.group is None:
            return list(self.topics)
        return [f"$share/{self.group}/{topic}" for topic in self.topics]

    def ssl_context(self) -> ssl.SSLContext:
        """The client TLS context; ``MqttSourceError`` names the file that cannot be used."""
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise MqttSourceError(f"TLS: cannot load ca_file {self.ca_file}: {exc}") from exc
        if self.client_cert is not None:
            try:
                context.load_cert_chain(
                    str(self.client_cert), str(self.client_key) if self.client_key else None)
            except (OSError, ssl.SSLError) as exc:
                raise MqttSourceError(
                    f"TLS: cannot load client_cert {self.client_cert} / client_key "
                    f"{self.client_key}: {exc}") from exc
        context.check_hostname = not self.tls_insecure
        context.sslsocket_class = _ClosingSSLSocket
        return context


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails: paho-mqtt 2.2 leaves that socket open."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def _check_topic_filter(topic: str) -> None:
    if not topic or len(topic.encode()) > 65_535 or "\x00" in topic:
        raise ValueError(f"topic filter {topic!r}: empty, too long or contains NUL")
    if topic.startswith("$share/"):
        raise ValueError(f"topic filter {topic!r}: set `group` instead of writing $share/")
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"topic filter {topic!r}: '#' must be a whole, last level")
        if "+" in level and level != "+":
            raise ValueError(f"topic filter {topic!r}: '+' must be a whole level")


class _PahoLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Forwards paho's log and keeps its last error, which often is the only place the real
    cause of a dropped connection (a TLS alert, a reset) is reported."""

    def __init__(self) -> None:
        super().__init__(_paho_log, {})
        self.last_error: str | None = None

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.ERROR:
            self.last_error = str(msg) % args if args else str(msg)
        super().log(level, msg, *args, **kwargs)


_REFUSAL_HINTS = {
    134: "check username and password",
    135: "the broker does not allow this client (credentials, ACL or client certificate)",
    133: "the broker rejected the client id",
}


class _Connection:
    """One network connection to the broker: a paho client driven by the asyncio loop.

    A new paho client per connection keeps packet ids and state of one connection apart from
    the next; the session that outlives connections lives on the broker.
    """

    def __init__(self, settings: MqttSettings, client_id: str, *, clean_start: bool,
                 session_expiry_s: int, receive_maximum: int | None,
                 on_message: Callable[[_Connection, paho.MQTTMessage], None]) -> None:
        self.settings = settings
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._clean_start = clean_start
        self._on_message_cb = on_message
        self.outstanding: set[int] = set()  # lag keys received here and not yet acked
        self.paused = False
        self.session_present = False
        self.connack: asyncio.Future[bool] = self._loop.create_future()
        self.closed: asyncio.Future[str] = self._loop.create_future()
        self._subacks: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._sock: Any = None  # paho's socket (plain or TLS)
        self._reading = False
        self._misc: asyncio.Task[None] | None = None
        self._paho_log = _PahoLog()

        client = paho.Client(
            callback_api_version=paho.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        client.enable_logger(self._paho_log)  # type: ignore[arg-type]
        client.connect_timeout = settings.connect_timeout_s
        if settings.username is not None:
            client.username_pw_set(
                settings.username,
                settings.password.get_secret_value() if settings.password else None)
        if settings.uses_tls:
            client.tls_set_context(settings.ssl_context())
            client.tls_insecure_set(settings.tls_insecure)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        self.client = client
        self._properties = Properties(PacketTypes.CONNECT)
        self._properties.SessionExpiryInterval = session_expiry_s
        if receive_maximum is not None:
            self._properties.ReceiveMaximum = receive_maximum

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> bool:
        """Connect and wait for CONNACK; returns the broker's session-present flag."""
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            await self._loop.run_in_executor(None, self._connect_blocking)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self._lost(f"connect failed: {exc}")
            over = ""
            if self.settings.uses_tls:
                verify = isinstance(exc, ssl.SSLCertVerificationError)
                over = " over TLS" if verify else " over TLS (is it a TLS listener?)"
            raise MqttSourceError(
                f"cannot connect to the MQTT broker at {where}{over}: {exc}") from exc
        try:
            done, _ = await asyncio.wait({self.connack, self.closed},
                                         timeout=self.settings.connect_timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if self.connack in done:
                self.session_present = self.connack.result()  # raises a refusal
                return self.session_present
            if self.closed in done and self.paho_error:
                raise MqttSourceError(f"the MQTT broker at {where} closed the connection before "
                                      f"CONNACK: {self.paho_error}")
            if self.closed in done:
                raise MqttSourceError(f"the MQTT broker at {where} closed the connection before "
                                      f"CONNACK: {self.closed.result()}")
            raise MqttSourceError(f"no CONNACK from the MQTT broker at {where} within "
                                  f"{self.settings.connect_timeout_s}s")
        except BaseException:
            self.abort()
            raise

    @property
    def paho_error(self) -> str | None:
        """paho's last logged error on this connection (the cause behind a bare "lost")."""
        return self._paho_log.last_error

    def _connect_blocking(self) -> None:
        self.client.connect(self.settings.host, self.settings.port,
                            keepalive=self.settings.keepalive_s,
                            clean_start=self._clean_start, properties=self._properties)

    async def subscribe(self, topics: Iterable[str], *, wait: bool) -> None:
        """Subscribe at QoS 1; with ``wait``, check the SUBACK and raise on a refusal."""
        options = SubscribeOptions(qos=QOS, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        wanted = [(topic, options) for topic in topics]
        rc, mid = self.client.subscribe(wanted)
        if rc != paho.MQTT_ERR_SUCCESS or mid is None:
            raise MqttSourceError(f"cannot send SUBSCRIBE: {paho.error_string(rc)}")
        suback: asyncio.Future[list[ReasonCode]] = self._loop.create_future()
        self._subacks[mid] = suback
        if not wait:
            suback.add_done_callback(lambda f: self._log_suback(wanted, f))
            return
        done, _ = await asyncio.wait({suback, self.closed}, timeout=self.settings.connect_timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        if suback not in done:
            raise MqttSourceError("the MQTT broker did not acknowledge the subscription"
                                  + (f": {self.closed.result()}" if self.closed.done() else ""))
        codes = zip(wanted, suback.result(), strict=False)
        refused = "; ".join(f"{topic}: {code}" for (topic, _), code in codes if code.is_failure)
        if refused:
            raise MqttSourceError(f"the MQTT broker refused the subscription ({refused})")

    @staticmethod
    def _log_suback(wanted: list[tuple[str, SubscribeOptions]],
                    suback: asyncio.Future[list[ReasonCode]]) -> None:
        if suback.cancelled() or suback.exception() is not None:
            return
        for (topic, _), code in zip(wanted, suback.result(), strict=False):
            if code.is_failure:
                log.error("MQTT resubscription to %s refused: %s", topic, code)

    async def disconnect(self) -> None:
        """Send DISCONNECT (the session stays for its expiry interval) and wait briefly."""
        if self.closed.done():
            return
        self.client.disconnect()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), timeout=2.0)
        self.abort()

    def abort(self, reason: str = "closed by the client") -> None:
        """Drop the network connection without DISCONNECT (as a network failure would).

        The connection counts as closed first, so nothing read or acked afterwards is
        attributed to it; this paho client is never used again.
        """
        sock = self.client.socket()
        self._lost(reason)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _teardown(self) -> None:
        self._stop_reading()
        if self._sock is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(self._sock)
            self._sock = None
        if self._misc is not None:
            self._misc.cancel()

    # -- flow control and acknowledgement -------------------------------------------------

    def ack(self, mid: int) -> bool:
        """Send the PUBACK for ``mid``; ``False`` when this connection is gone."""
        if self.closed.done():
            return False
        return self.client.ack(mid, QOS) == paho.MQTT_ERR_SUCCESS

    def pause(self) -> None:
        """Stop reading: the broker's messages wait in the socket and then in the session."""
        self.paused = True
        self._stop_reading()

    def resume(self) -> None:
        self.paused = False
        if self._sock is not None and not self.closed.done():
            self._start_reading()
            # TLS may hold decrypted bytes the selector cannot see; read them now.
            self._loop.call_soon(self._on_readable)

    def _start_reading(self) -> None:
        if self._sock is not None and not self._reading:
            self._loop.add_reader(self._sock, self._on_readable)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._sock is not None and self._reading:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._sock)
        self._reading = False

    # -- paho's external-loop callbacks ---------------------------------------------------

    def _call_in_loop(self, function: Callable[[], None]) -> None:
        if threading.get_ident() == self._thread:
            function()
        else:  # paho calls the socket hooks from connect(), which runs in an executor thread
            self._loop.call_soon_threadsafe(function)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def opened() -> None:
            if sock.fileno() < 0:  # closed again before this deferred call ran
                return
            self._sock = sock
            if not self.paused:
                self._start_reading()
            self._misc = self._loop.create_task(self._misc_loop(), name="mqtt-keepalive")
        self._call_in_loop(opened)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._call_in_loop(self._teardown)

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def register() -> None:
            if sock.fileno() >= 0:
                self._loop.add_writer(sock, self._on_writable)
        self._call_in_loop(register)

    def _on_socket_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def unregister() -> None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(sock)
        self._call_in_loop(unregister)

    def _on_readable(self) -> None:
        # paho reads one packet per call for a subscriber (no QoS 2 in flight), so the pause
        # decided in on_message takes effect before the next packet.
        try:
            rc = self.client.loop_read()
            pending = getattr(self.client.socket(), "pending", None)
            while (rc == paho.MQTT_ERR_SUCCESS and not self.paused and pending is not None
                   and pending() > 0):
                rc = self.client.loop_read()
        except Exception as exc:  # a broken socket surfaces here; paho does not always catch it
            self.abort(f"read failed: {exc}")

    def _on_writable(self) -> None:
        try:
            self.client.loop_write()
        except Exception as exc:
            self.abort(f"write failed: {exc}")

    async def _misc_loop(self) -> None:
        while self.client.loop_misc() == paho.MQTT_ERR_SUCCESS:  # keep-alive pings
            await asyncio.sleep(1.0)

    def _lost(self, reason: str) -> None:
        self._teardown()
        if not self.closed.done():
            self.closed.set_result(reason)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        if self.connack.done():
            return
        if reason_code.is_failure:
            hint = _REFUSAL_HINTS.get(reason_code.value, "")
            self.connack.set_exception(MqttSourceError(
                f"the MQTT broker at {self.settings.host}:{self.settings.port} refused the "
                f"connection: {reason_code}" + (f" ({hint})" if hint else "")))
        else:
            self.connack.set_result(bool(flags.session_present))

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: paho.DisconnectFlags,
                       reason_code: ReasonCode, properties: Properties | None) -> None:
        if not reason_code.is_failure:
            reason = "disconnected"
        elif self._paho_log.last_error:
            reason = f"connection lost: {self._paho_log.last_error}"
        elif reason_code.value == 128:  # paho's "Unspecified error": the socket just closed
            reason = "connection lost (closed by the broker or the network)"
        else:
            reason = f"disconnected by the broker: {reason_code}"
        self._lost(reason)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                      reason_codes: list[ReasonCode], properties: Properties | None) -> None:
        future = self._subacks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(reason_codes)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._on_message_cb(self, message)


class MqttSource:
    """Messages from the MQTT broker, delivered for explicit acknowledgement.

    ``await start()`` (or ``async with``) connects once and raises ``MqttSourceError`` with the
    cause when the broker cannot be used; afterwards connection losses are logged and retried
    with exponential backoff, and ``messages()`` just keeps going. ``lag`` is the gauge,
    ``counters`` the totals for the bridge's metrics.
    """

    def __init__(self, settings: MqttSettings, *, on_reject: RejectHook | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        if settings.client_id is None:
            raise MqttSourceError("MqttSettings.client_id is required for a source: it names the "
                                  "persistent session that keeps unacknowledged messages")
        self.settings = settings
        self._on_reject = on_reject
        self._lag = LagTracker(clock) if clock else LagTracker()
        self._queue: asyncio.Queue[tuple[_Connection, SourceMessage] | None] = asyncio.Queue()
        self._conn: _Connection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._sequence = 0
        self._warned_qos0 = False
        self._connected = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self.counters: dict[str, int] = dict.fromkeys(
            ("received", "acked", "redelivered", "rejected_topic", "rejected_size",
             "stale_acks", "qos0", "connects", "connection_losses", "connect_failures"), 0)

    # -- public surface -----------------------------------------------------------------

    @property
    def lag(self) -> LagSnapshot:
        return self._lag.snapshot()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        """Connect and subscribe; raise ``MqttSourceError`` if that is impossible."""
        async with self._start_lock:
            if self._runner is not None:
                return
            if self._closing:
                raise MqttSourceError("the source is closed")
            conn = await self._connect()
            self._runner = asyncio.create_task(self._run(conn), name="mqtt-source")

    async def wait_connected(self, timeout: float) -> None:
        """Wait until a connection is up (after a loss, until the reconnect succeeded)."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def messages(self) -> AsyncIterator[SourceMessage]:
        """Delivered messages in arrival order, until ``close()``."""
        await self.start()
        while True:
            item = await self._queue.get()
            if item is None:
                return
            conn, message = item
            if conn is not self._conn or conn.closed.done():
                continue  # its connection is gone: forgotten by the gauge, redelivered later
            problem = self._check(message)
            if problem is not None:
                await self._reject(message, problem)
                continue
            yield message

    async def close(self) -> None:
        """Disconnect cleanly; the broker keeps the session and redelivers what is unacked."""
        self._closing = True
        self._connected.clear()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._conn is not None:
            await self._conn.disconnect()
            self._forget(self._conn)
        self._queue.put_nowait(None)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- connection management ---------------------------------------------------------

    async def _connect(self) -> _Connection:
        settings = self.settings
        assert settings.client_id is not None
        conn = _Connection(settings, settings.client_id, clean_start=False,
                           session_expiry_s=settings.session_expiry_s,
                           receive_maximum=settings.max_inflight, on_message=self._received)
        self._conn = conn
        session_present = await conn.open()
        try:
            # A present session still has the subscriptions; refresh them without waiting for
            # a SUBACK that may sit behind redelivered messages while reading is paused.
            await conn.subscribe(settings.subscriptions(), wait=not session_present)
        except BaseException:
            conn.abort("subscription failed")
            raise
        self.counters["connects"] += 1
        self._connected.set()
        log.info("MQTT source %s connected to %s:%d (session %s)", settings.client_id,
                 settings.host, settings.port, "resumed" if session_present else "new")
        return conn

    async def _run(self, conn: _Connection) -> None:
        delay = self.settings.reconnect_initial_s
        while True:
            reason = await asyncio.shield(conn.closed)
            if self._closing:
                return
            self._connected.clear()
            self._forget(conn)
            self.counters["connection_losses"] += 1
            log.warning("MQTT source %s lost its connection (%s); reconnecting",
                        self.settings.client_id, reason)
            while True:
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                try:
                    conn = await self._connect()
                except MqttSourceError as exc:
                    self.counters["connect_failures"] += 1
                    delay = min(delay * 2, self.settings.reconnect_max_s)
                    log.warning("MQTT reconnect failed: %s; next attempt in about %.2fs",
                                exc, delay)
                    continue
                except Exception:  # never let the consumer die of a surprise
                    self.counters["connect_failures"] += 1
                    delay = min(delay * 2, self.settings.reconnect_max_s)
                    log.exception("MQTT reconnect failed unexpectedly")
                    continue
                delay = self.settings.reconnect_initial_s
                break

    def _forget(self, conn: _Connection) -> None:
        self._lag.forget(list(conn.outstanding))
        conn.outstanding.clear()

    # -- per message -----------------------------------------------------------------------

    def _received(self, conn: _Connection, raw: paho.MQTTMessage) -> None:
        if conn.closed.done() or conn is not self._conn:
            return  # a straggler of a dead connection: the broker redelivers it
        self._sequence += 1
        key = self._sequence
        self.counters["received"] += 1
        if raw.dup:
            self.counters["redelivered"] += 1
        if raw.qos == 0:
            self.counters["qos0"] += 1
            if not self._warned_qos0:
                self._warned_qos0 = True
                log.warning("a QoS 0 message arrived on %s: QoS 0 publishers get no "
                            "redelivery guarantee; hubs must publish at QoS 1", raw.topic)
        mid, qos = raw.mid, raw.qos

        async def ack() -> None:
            self._acked(conn, key, mid, qos)

        message = SourceMessage(topic=raw.topic, payload=bytes(raw.payload),
                                received_at=datetime.now(UTC), redelivered=bool(raw.dup),
                                _ack=ack)
        self._lag.received(key)
        conn.outstanding.add(key)
        self._queue.put_nowait((conn, message))
        if len(conn.outstanding) >= self.settings.max_inflight:
            conn.pause()

    def _acked(self, conn: _Connection, key: int, mid: int, qos: int) -> None:
        if key not in conn.outstanding:  # its connection was lost meanwhile
            self.counters["stale_acks"] += 1
            return
        if qos > 0 and not conn.ack(mid):
            self.counters["stale_acks"] += 1
            return
        conn.outstanding.discard(key)
        self._lag.acked(key)
        self.counters["acked"] += 1
        if conn.paused and len(conn.outstanding) < self.settings.max_inflight:
            conn.resume()

    def _check(self, message: SourceMessage) -> SourceError | None:
        if len(message.payload) > self.settings.max_payload_bytes:
            self.counters["rejected_size"] += 1
            return PayloadTooLarge(message.topic, len(message.payload),
                                   self.settings.max_payload_bytes)
        if self.settings.validate_topics:
            try:
                parse_topic(message.topic)
            except TopicError as exc:
                self.counters["rejected_topic"] += 1
                return exc
        return None

    async def _reject(self, message: SourceMessage, problem: SourceError) -> None:
        log.warning("MQTT message rejected and acknowledged: %s", problem)
        if self._on_reject is not None:
            try:
                await self._on_reject(message, problem)
            except Exception:  # the hook failed: keep the message unacked for a redelivery
                log.exception("reject hook failed for a message on %s", message.topic)
                return
        await message.ack()


class MqttPublisher:
    """Publishes at QoS 1 (waiting for the broker's PUBACK): the hub simulator and the tests."""

    def __init__(self, settings: MqttSettings, *, concurrency: int = 50) -> None:
        self.settings = settings
        self._concurrency = concurrency
        self._client: aiomqtt.Client | None = None

    async def __aenter__(self) -> Self:
        settings = self.settings
        client = aiomqtt.Client(
            settings.host, settings.port,
            identifier=settings.client_id or f"bpc-pub-{uuid.uuid4().hex[:12]}",
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=True,
            max_inflight_messages=self._concurrency,
            tls_context=settings.ssl_context() if settings.uses_tls else None,
            tls_insecure=settings.tls_insecure if settings.uses_tls else None,
            timeout=settings.connect_timeout_s,
        )
        client.pending_calls_threshold = self._concurrency + 10
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise MqttSourceError(f"cannot connect the publisher to {settings.host}:"
                                  f"{settings.port}: {exc}") from exc
        self._client = client
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None

    async def publish(self, topic: str, payload: bytes | str, qos: int = QOS) -> None:
        if self._client is None:
            raise RuntimeError("use `async with MqttPublisher(...)` before publishing")
        await self._client.publish(topic, payload, qos=qos)

    async def publish_many(self, messages: Iterable[tuple[str, bytes | str]],
                           qos: int = QOS) -> int:
        """Publish concurrently (up to ``concurrency`` waiting for PUBACK); returns the count.

        Order is kept per topic only when ``concurrency`` is 1.
        """
        gate = asyncio.Semaphore(self._concurrency)
        count = 0

        async def one(topic: str, payload: bytes | str) -> None:
            try:
                await self.publish(topic, payload, qos)
            finally:
                gate.release()

        async with asyncio.TaskGroup() as group:
            for topic, payload in messages:
                await gate.acquire()
                group.create_task(one(topic, payload))
                count += 1
        return count


async def forget_session(settings: MqttSettings, client_id: str | None = None) -> None:
    """End the broker-side session of ``client_id``: its subscriptions and every message
    queued for it are discarded. For retiring a worker for good, and for test cleanup."""
    identifier = client_id or settings.client_id
    if identifier is None:
        raise MqttSourceError("forget_session needs a client id")
    conn = _Connection(settings, identifier, clean_start=True, session_expiry_s=0,
                       receive_maximum=None, on_message=lambda c, m: None)
    await conn.open()
    await conn.disconnect()


__all__ = [
    "QOS",
    "MqttPublisher",
    "MqttSettings",
    "MqttSource",
    "MqttSourceError",
    "forget_session",
]
