"""MQTT ingest: one persistent, at-least-once subscription per configured connection.

Why it is built this way
    Delivery guarantee. Every subscription is QoS 1 and a message is acknowledged (PUBACK)
    only *after* ``handle`` returned. A crash, a cancelled task or a lost connection
    between receipt and acknowledgement leaves the message unacknowledged in the broker's
    session, which sends it again on the next connection. Duplicates are possible (that is
    what at-least-once means); the pipeline's dedup key absorbs them.

    Manual acknowledgement. aiomqtt 2.5.1 has no option for it (its ``Client.__init__``
    builds ``paho.mqtt.client.Client(...)`` without ``manual_ack``; see
    empicano/aiomqtt#345 and the unmerged PR #346). The paho-mqtt 2.x client it wraps
    has it: with ``manual_ack_set(True)`` ``_handle_publish`` skips ``_send_puback`` for
    QoS 1 and ``ack(mid, qos)`` sends it later. We reach that client through aiomqtt's
    ``Client._client`` attribute (the only private access in this module, checked by
    ``_paho``; aiomqtt is pinned) and switch manual acks on *before* connecting, because
    a persistent session starts delivering right after CONNACK.

    Persistent session. MQTT 3.1.1 with ``clean_session=False`` and a stable client
    identifier: the broker keeps the subscriptions and queues QoS 1 messages while the
    adapter is away (restart, deploy, broker failover). 3.1.1 rather than 5 because it is
    the common denominator: The Things Stack's MQTT server and ChirpStack's usual
    Mosquitto both speak it, and under 3.1.1 the session never expires on its own, so
    nothing is lost however long the outage. (With v5 every new aiomqtt client would also
    need ``clean_start=False``, since aiomqtt's default cleans the first connection of each
    client object, plus a session-expiry property.) The price: a decommissioned client
    identifier keeps its queue on the broker until someone removes it.

    A handler that raises. ``handle`` normally never raises (bad input becomes a dead
    letter). When it does, it is a bug or a broken resource (disk full, the next stage
    down), and the message must not be lost: it is logged and left unacknowledged.
    An MQTT broker sends an unacknowledged message again only on a new connection, so
    the consumer keeps processing (and acknowledging) the messages after it for a grace
    delay, then reconnects to have it redelivered. The delay doubles at each consecutive
    failing round (``reconnect_delay_s`` up to ``max_reconnect_delay_s``): a message that
    always fails is retried every ``max_reconnect_delay_s`` at worst and never in a hot
    loop, and it does not block the messages behind it. The broker's in-flight window
    (Mosquitto: 20 messages) bounds how many failures can pile up before the reconnect.

    Broker loss. Any ``aiomqtt.MqttError`` (or socket error) ends the connection; it is
    logged and the consumer reconnects with capped exponential backoff, reset once a
    connection is subscribed again. Broker errors never escape ``consume_mqtt`` (a
    refused login is logged as an error and retried at the longest delay, so one
    collectivity's revoked credentials do not stop the others); only a configuration
    error found before connecting (unknown LNS) raises, as ``ConfigError``.

    TLS and credentials. ``tls = true`` connects with the SSL context of
    ``adapter.sources.mqtt_tls`` (server certificate and name verified, TLS 1.2+, the client
    certificate if configured), built anew at each connection so renewed files are used;
    there is no fallback to plaintext. Before its first connection ``consume_mqtt`` reads the
    TLS files and the ``password_env`` variable and raises ``ConfigError`` if one is unusable.
    A refused handshake (untrusted server, refused or expired client certificate) is one
    error line saying what to check, then the usual backoff. With TLS 1.3 a broker refuses a
    client certificate after the handshake and closes before CONNACK, which aiomqtt 2.5.1
    would only notice at its 10 s timeout (its ``_on_disconnect`` ignores a loss before
    CONNACK): the session watches paho's ``on_disconnect`` itself, and keeps paho's own error
    lines (``on_log``) to quote them in that one error instead of logging them apart.

    Serial processing. ``handle`` is synchronous and is called on the event loop, one
    message at a time, so the pipeline (not thread-safe) is never entered twice at once.

    Group commit. With a batch entry point (``handle_many``, which ``AdapterService`` has),
    every message already received when the consumer wakes up (up to ``MAX_BURST``; the
    broker's in-flight window bounds it anyway) goes through the pipeline in one SQLite
    transaction, and the PUBACKs of the burst are sent after ``handle_many`` returned, i.e.
    after the commit: a crash before it leaves the whole burst unacknowledged. The consumer
    does not wait for more messages to fill a burst: a burst is what piled up while the
    previous one was processed, so a quiet connection keeps its latency and a busy one
    amortises the commit. Each message keeps its own outcome: one that failed is not
    acknowledged and is redelivered as above, the others are acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from adapter.config import MQTT_PORT, MQTT_TLS_PORT, Connection
from adapter.pipeline import PipelineResult
from adapter.sources import get_parser
from adapter.sources.mqtt_tls import MqttTlsError, describe_tls_failure, tls_context
from adapter.uplink import Origin

__all__ = ["MAX_BURST", "QOS", "BatchHandler", "Handler", "client_identifier", "consume_mqtt"]

log = logging.getLogger(__name__)
#: aiomqtt's and paho's own lines (paho's errors are quoted in this module's instead)
client_log = logging.getLogger(f"{__name__}.client")

#: every subscription asks for at-least-once delivery
QOS = 1
#: the most messages handled in one transaction (group commit)
MAX_BURST = 200
#: seconds; a silent broker (network partition) is noticed within 1.5 times this
KEEPALIVE_S = 30
# CONNACK refusals that retrying soon will not cure (paho's MQTT 5 numbering, which it also
# uses for 3.1.1): client identifier not valid, bad user name or password, not authorised.
_REFUSED_FOR_GOOD = frozenset({0x85, 0x86, 0x87})


class Handler(Protocol):
    """The callback each transport hands its events to (``adapter.app.listen`` builds it)."""

    def __call__(
        self, body: bytes, *, lns: str, origin: Origin, topic: str | None = None, event: str | None = None
    ) -> PipelineResult: ...


class BatchHandler(Protocol):
    """A burst of one connection's messages, ``(body, topic)``, in one transaction.

    Returns one outcome per message, in order: its result (stored and committed when the call
    returns) or the exception that stopped it (nothing of it stored). ``AdapterService.handle_many``.
    """

    def __call__(
        self, messages: list[tuple[bytes, str | None]], *, lns: str, origin: Origin
    ) -> Sequence[PipelineResult | Exception]: ...


@dataclass
class _Backoff:
    """Capped exponential delays: initial, 2x, 4x... up to ``cap``."""

    initial: float
    cap: float
    _next: float = field(init=False)

    def __post_init__(self) -> None:
        self._next = self.initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.initial


def client_identifier(connection: Connection) -> str:
    """The stable MQTT client identifier that names the connection's persistent session."""
    return connection.client_id or f"ngsild-adapter-{connection.name}"


async def consume_mqtt(
    connection: Connection,
    handle: Handler,
    *,
    stop: asyncio.Event | None = None,
    reconnect_delay_s: float = 1.0,
    max_reconnect_delay_s: float = 30.0,
    ready: asyncio.Event | None = None,
    handle_many: BatchHandler | None = None,
) -> None:
    """Consume ``connection``'s events into ``handle`` until ``stop`` is set or the task is cancelled.

    Each message is acknowledged only after ``handle`` returned (see the module docstring
    for the delivery guarantee, the redelivery of messages whose handler raised and the
    reconnect policy). ``ready``, if given, is set each time the subscriptions are in
    place (for health checks and tests). On the way out the connection is closed with a
    DISCONNECT, so unacknowledged messages stay in the broker session for the next run.
    Raises ``ConfigError`` at once if the connection's LNS is unknown, its ``password_env``
    variable is not set, or its TLS files cannot be used (``MqttTlsError``).

    ``handle_many``, if given, takes bursts of messages in one transaction (group commit, see
    the module docstring); ``AdapterService`` passes its own.
    """
    stop = stop or asyncio.Event()
    topics = get_parser(connection.lns).mqtt_subscriptions(connection.application)
    connection.required_password()
    tls_context(connection)  # the files are read again at each connection; here, refused before any
    _warn_about_port(connection)
    reconnect = _Backoff(reconnect_delay_s, max_reconnect_delay_s)
    redelivery = _Backoff(reconnect_delay_s, max_reconnect_delay_s)
    session = _Session(connection, handle, topics, reconnect, redelivery, ready, handle_many)
    while not stop.is_set():
        try:
            await _unless_stopped(session.run(), stop)
        except MqttTlsError as exc:  # a file went missing or expired since the start: it may come back
            delay = reconnect.next()
            log.error("MQTT %s: %s; retrying in %.1f s", connection.name, exc, delay)
            await _sleep_unless_stopped(delay, stop)
        except (aiomqtt.MqttError, OSError) as exc:
            delay = max_reconnect_delay_s if _refused_for_good(exc) else reconnect.next()
            _log_lost(connection, exc, delay, session.paho_error)
            await _sleep_unless_stopped(delay, stop)


@dataclass
class _Session:
    """One connection to the broker, from CONNECT to the DISCONNECT or the failure."""

    connection: Connection
    handle: Handler
    topics: list[str]
    reconnect: _Backoff
    redelivery: _Backoff
    ready: asyncio.Event | None
    handle_many: BatchHandler | None = None
    #: paho's last error line in the current connection (an OpenSSL alert...), for the loss report
    paho_error: str | None = None

    async def run(self) -> None:
        """Return when a message whose handler failed is due for redelivery; raise on broker loss."""
        self.paho_error = None
        closed = asyncio.Event()
        client = _client(self.connection, tls_context(self.connection), self._paho_log, closed)
        async with contextlib.AsyncExitStack() as stack:
            await _connect(client, closed)
            stack.push_async_exit(client)
            await _subscribe(client, self.connection, self.topics)
            self.reconnect.reset()
            if self.ready is not None:
                self.ready.set()
            await self._consume(client)

    def _paho_log(self, client: paho.Client, userdata: Any, level: int, line: str) -> None:  # noqa: ANN401
        """paho's ``on_log``: its errors are kept for the loss report, every line goes to debug."""
        if level == paho.MQTT_LOG_ERR:
            self.paho_error = line
        client_log.debug("MQTT %s: %s", self.connection.name, line)

    async def _consume(self, client: aiomqtt.Client) -> None:
        inner = _paho(client)
        ack = inner.ack
        loop = asyncio.get_running_loop()
        incoming = _incoming(client) if self.handle_many is not None else None
        try:
            async with asyncio.timeout(None) as redeliver_at:
                async for message in client.messages:
                    # No await between handling and ack(): cancellation cannot split them.
                    if self.handle_many is None:
                        burst, delivered = [message], [self._deliver(message)]
                    else:
                        burst = [message]
                        if incoming is not None:
                            _take_received(inner, incoming, burst)
                        delivered = self._deliver_burst(burst)
                    for message, ok in zip(burst, delivered, strict=True):
                        if ok:
                            ack(message.mid, message.qos)
                            if redeliver_at.when() is None:
                                self.redelivery.reset()
                        elif redeliver_at.when() is None:
                            delay = self.redelivery.next()
                            redeliver_at.reschedule(loop.time() + delay)
                            log.warning(
                                "MQTT %s: reconnecting in %.1f s to have the failed message redelivered",
                                self.connection.name,
                                delay,
                            )
        except TimeoutError:
            if not redeliver_at.expired():
                raise

    def _deliver_burst(self, burst: list[aiomqtt.Message]) -> list[bool]:
        """Hand a burst to ``handle_many``; which messages may be acknowledged (committed)."""
        assert self.handle_many is not None
        try:
            outcomes = self.handle_many(
                [(_payload(m), str(m.topic)) for m in burst], lns=self.connection.lns, origin=self.connection.origin
            )
            if len(outcomes) != len(burst):
                raise RuntimeError(f"{len(outcomes)} outcomes for a burst of {len(burst)} messages")
        except Exception:
            log.exception(
                "MQTT %s: the handler failed on a burst of %d messages; none is acknowledged "
                "and they will be redelivered",
                self.connection.name,
                len(burst),
            )
            return [False] * len(burst)
        delivered = []
        for message, outcome in zip(burst, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error(
                    "MQTT %s: the handler failed on a message from %s (mid %d); it is not acknowledged "
                    "and will be redelivered",
                    self.connection.name,
                    message.topic,
                    message.mid,
                    exc_info=outcome,
                )
                delivered.append(False)
            else:
                delivered.append(True)
        return delivered

    def _deliver(self, message: aiomqtt.Message) -> bool:
        topic = str(message.topic)
        try:
            self.handle(_payload(message), lns=self.connection.lns, origin=self.connection.origin, topic=topic)
        except Exception:
            log.exception(
                "MQTT %s: the handler failed on a message from %s (mid %d); it is not acknowledged "
                "and will be redelivered",
                self.connection.name,
                topic,
                message.mid,
            )
            return False
        return True


def _client(
    connection: Connection,
    context: ssl.SSLContext | None,
    on_log: Any,
    closed: asyncio.Event,  # noqa: ANN401
) -> aiomqtt.Client:
    """An aiomqtt client for one connection: manual acks, paho's lines to ``on_log``, and
    ``closed`` set when paho reports the connection closed before any CONNACK (a CONNACK,
    even a refusal, is aiomqtt's to report)."""
    client = aiomqtt.Client(
        connection.host,
        connection.port,
        username=connection.username,
        password=connection.password,
        identifier=client_identifier(connection),
        protocol=aiomqtt.ProtocolVersion.V311,
        clean_session=False,
        keepalive=KEEPALIVE_S,
        tls_context=context,
        logger=client_log,
    )
    inner = _paho(client)
    inner.manual_ack_set(True)
    inner.disable_logger()  # paho's lines go to on_log, which quotes its errors in one report
    inner.on_log = on_log
    aiomqtt_on_connect, aiomqtt_on_disconnect = inner.on_connect, inner.on_disconnect
    loop = asyncio.get_running_loop()
    answered = False

    # paho's callbacks, called from the event loop (or from the connecting thread)
    def on_connect(*args: Any) -> None:  # noqa: ANN401
        nonlocal answered
        answered = True
        if aiomqtt_on_connect is not None:
            aiomqtt_on_connect(*args)

    def on_disconnect(*args: Any) -> None:  # noqa: ANN401
        if aiomqtt_on_disconnect is not None:
            aiomqtt_on_disconnect(*args)
        if not answered:
            loop.call_soon_threadsafe(closed.set)

    inner.on_connect, inner.on_disconnect = on_connect, on_disconnect
    return client


async def _connect(client: aiomqtt.Client, closed: asyncio.Event) -> None:
    """Enter ``client`` (CONNECT, CONNACK); raise at once if the connection closes before CONNACK.

    aiomqtt 2.5.1 ignores a disconnection before CONNACK and waits for its timeout; a broker
    refusing a client certificate under TLS 1.3 closes exactly then."""
    entering = asyncio.ensure_future(client.__aenter__())
    lost = asyncio.ensure_future(closed.wait())
    try:
        await asyncio.wait({entering, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        lost.cancel()
        if not entering.done():
            entering.cancel()
        await asyncio.gather(entering, lost, return_exceptions=True)
    if entering.cancelled():
        raise _ClosedBeforeConnack("the broker closed the connection before answering CONNECT")
    entering.result()


class _ClosedBeforeConnack(aiomqtt.MqttError):
    """The connection closed after CONNECT and before CONNACK (a refused client certificate,
    a plaintext client on a TLS port, a broker that drops the client)."""


def _take_received(inner: paho.Client, incoming: asyncio.Queue[aiomqtt.Message], burst: list[aiomqtt.Message]) -> None:
    """Add to ``burst`` the messages received and not yet handled, up to ``MAX_BURST``; never waits.

    aiomqtt reads one MQTT packet each time the event loop finds the socket readable, so
    most of what the broker has already sent would still be in the socket: it is read here
    with paho's ``loop_read`` (its API for clients that run their own loop), which reads
    what is there and returns at once when nothing is. A failure it meets (a lost connection)
    is paho's to report, through aiomqtt's disconnection, as when aiomqtt reads.
    """
    while len(burst) < MAX_BURST:
        try:
            burst.append(incoming.get_nowait())
            continue
        except asyncio.QueueEmpty:
            pass
        try:
            inner.loop_read()
        except Exception:  # noqa: BLE001  # aiomqtt's own read sees it again and disconnects
            return
        if incoming.empty():
            return


def _incoming(client: aiomqtt.Client) -> asyncio.Queue[aiomqtt.Message] | None:
    """aiomqtt's queue of received messages, to take a burst without a task per message.

    ``client.messages`` (the public way) awaits each message through a new task; the messages
    already received wait in this queue (aiomqtt 2.5.1's ``Client._queue``, whose size
    ``len(client.messages)`` gives). Without it (another aiomqtt), every burst is one message:
    correct, only slower.
    """
    queue = getattr(client, "_queue", None)
    return queue if isinstance(queue, asyncio.Queue) else None


def _paho(client: aiomqtt.Client) -> paho.Client:
    """The paho client inside aiomqtt's, for manual acknowledgement (absent from aiomqtt 2.5.1)."""
    inner = getattr(client, "_client", None)
    if not isinstance(inner, paho.Client):
        raise RuntimeError("aiomqtt no longer exposes its paho client; manual acknowledgement needs another way")
    return inner


async def _subscribe(client: aiomqtt.Client, connection: Connection, topics: list[str]) -> None:
    granted = await client.subscribe([(topic, QOS) for topic in topics])
    for topic, code in zip(topics, granted, strict=True):
        value = code.value if isinstance(code, ReasonCode) else int(code)  # type: ignore[call-overload]  # MQTT 3.1.1: granted QoS as int
        if value >= 0x80:
            log.error("MQTT %s: the broker refused the subscription to %s (%s)", connection.name, topic, code)
        elif value < QOS:
            log.warning(
                "MQTT %s: the broker granted QoS %d only on %s; messages may be lost", connection.name, value, topic
            )
    log.info(
        "MQTT %s: connected to %s:%d as %s, subscribed to %s",
        connection.name,
        connection.host,
        connection.port,
        client.identifier,
        ", ".join(topics),
    )


def _payload(message: aiomqtt.Message) -> bytes:
    payload: Any = message.payload
    return payload if isinstance(payload, bytes) else bytes(payload or b"")


def _refused_for_good(exc: BaseException) -> bool:
    rc = getattr(exc, "rc", None)
    return isinstance(rc, ReasonCode) and rc.value in _REFUSED_FOR_GOOD


def _warn_about_port(connection: Connection) -> None:
    """A port that contradicts ``tls`` is most likely a mistake; the connection would fail. A
    password (a TTS API key, often) sent in clear beyond this host is worth saying aloud: it is
    readable by anyone on the path (a private network between containers may be fine)."""
    if connection.tls is None and connection.password_env and not _loopback(connection.host):
        log.warning(
            "MQTT %s: the password of %s goes in clear to %s:%d (no TLS): set tls = true unless this network "
            "is private to the adapter and its broker",
            connection.name,
            connection.username,
            connection.host,
            connection.port,
        )
    if connection.tls is not None and connection.port == MQTT_PORT:
        log.warning(
            "MQTT %s: tls = true on port %d, MQTT's plaintext port (MQTT over TLS is usually %d)",
            connection.name,
            MQTT_PORT,
            MQTT_TLS_PORT,
        )
    elif connection.tls is None and connection.port == MQTT_TLS_PORT:
        log.warning(
            "MQTT %s: plaintext on port %d, MQTT's port for TLS: set tls = true if the broker expects TLS",
            connection.name,
            MQTT_TLS_PORT,
        )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _log_lost(connection: Connection, exc: BaseException, delay: float, paho_error: str | None = None) -> None:
    where = f"{connection.host}:{connection.port}"
    said = f"{exc}; {paho_error}" if paho_error else str(exc)
    meaning = describe_tls_failure(said) if connection.tls is not None else None
    if meaning is not None:
        log.error(
            "MQTT %s: TLS with %s failed: %s (%s); reconnecting in %.1f s", connection.name, where, meaning, said, delay
        )
    elif isinstance(exc, _ClosedBeforeConnack):
        hint = " (is it a TLS port? see tls)" if connection.tls is None else ""
        log.error(
            "MQTT %s: %s closed the connection before answering CONNECT%s (%s); reconnecting in %.1f s",
            connection.name,
            where,
            hint,
            said,
            delay,
        )
    elif _refused_for_good(exc):
        log.error(
            "MQTT %s: %s refused the login (%s); check the credentials and client identifier. Retrying in %.1f s",
            connection.name,
            where,
            exc,
            delay,
        )
    else:
        log.warning(
            "MQTT %s: connection to %s lost or refused (%s); reconnecting in %.1f s",
            connection.name,
            where,
            said,
            delay,
        )


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run ``work`` until it ends or ``stop`` is set (then it is cancelled, which disconnects)."""
    task = asyncio.create_task(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, stopped):
            t.cancel()
        await asyncio.gather(task, stopped, return_exceptions=True)
    if not task.cancelled():
        task.result()


async def _sleep_unless_stopped(delay: float, stop: asyncio.Event) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay)
    except TimeoutError:
        pass
