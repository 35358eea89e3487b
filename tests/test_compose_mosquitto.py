"""Mosquitto of the production compose: its ACL confines every account to its own
collectivity's topics.

The ACL, parsed into a model evaluated like Mosquitto's ``acl_file``
(``tests.compose_support``), against the adapter's connections and what each subscribes to:
each LNS account writes its own collectivity's event topics only, each adapter account reads
them only, over generated topics (hypothesis, fixed seed). Then a real Mosquitto (this
machine's, ``integration``) started with the compose ``mosquitto.conf`` and the same ACL file
shows it: no anonymous client, no cross-collectivity publish, adapter accounts read only, no
session taken over by client identifier.
"""

from __future__ import annotations

import getpass
import queue
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub
from paho.mqtt.enums import CallbackAPIVersion

from adapter.demo.mosquitto import MosquittoBroker, MosquittoError
from adapter.sources import get_parser
from tests.compose_support import (
    ACL,
    COMPOSE,
    CONFIG,
    MOSQUITTO_CONF,
    MOSQUITTO_CONF_TEXT,
    AclSyntaxError,
    mount_at,
    mounts,
    parse_acl,
    required,
)

#: the adapter's connections through the compose Mosquitto, and what each subscribes to
MQTT_CONNECTIONS = [c for c in CONFIG.connections if c.transport == "mqtt" and c.host == "mosquitto"]
SUBSCRIPTIONS = {c.name: get_parser(c.lns).mqtt_subscriptions(c.application) for c in MQTT_CONNECTIONS}
TENANTS = sorted({c.collectivity for c in MQTT_CONNECTIONS})
#: a collectivity's events: what its connections subscribe to (what its LNS account may write)
EVENTS = {t: [s for c in MQTT_CONNECTIONS if c.collectivity == t for s in SUBSCRIPTIONS[c.name]] for t in TENANTS}
#: a collectivity's whole topic space: its applications' subtrees
SPACE = {t: ["/".join(s.split("/")[:2] + ["#"]) for s in EVENTS[t]] for t in TENANTS}
APPLICATIONS = [c.application for c in MQTT_CONNECTIONS if c.application]


def _lns(tenant: str) -> str:
    return f"lns-{tenant}"


def _within(filters: list[str], topic: str) -> bool:
    return any(topic_matches_sub(f, topic) for f in filters)


def test_the_acl_names_one_lns_and_one_adapter_account_per_collectivity_and_nothing_global() -> None:
    assert ACL.global_rules == () and ACL.patterns == ()  # they would apply to every account, anonymous too
    assert len(TENANTS) >= 2
    usernames = [c.username for c in MQTT_CONNECTIONS]
    assert len(set(usernames)) == len(usernames)  # one account per connection (the client id is the username)
    assert set(ACL.users) == {_lns(t) for t in TENANTS} | set(usernames)
    for connection in MQTT_CONNECTIONS:
        assert connection.application, connection.name  # a `+` would subscribe to every collectivity's events
        rules = ACL.users[connection.username or ""]
        assert {r.access for r in rules} == {"read"}, connection.name  # the adapter only reads
        assert {r.topic for r in rules} == set(SUBSCRIPTIONS[connection.name])
    for tenant in TENANTS:
        writes = {r.topic for r in ACL.users[_lns(tenant)] if r.access in ("write", "readwrite")}
        assert writes == set(EVENTS[tenant]), tenant


#: concrete topics (no wildcard: what a client publishes or is delivered), near and far from the ACL's
_LEVELS = st.sampled_from(
    ["application", "device", "event", "command", "up", "down", "join", "v3", "devices", "", *APPLICATIONS]
) | st.text(alphabet="abc019-@", min_size=1, max_size=8)
_TOPICS = st.lists(_LEVELS, min_size=1, max_size=7).map("/".join) | st.builds(
    "application/{}/device/{}/{}/{}".format,
    st.sampled_from(APPLICATIONS) | st.uuids().map(str),
    st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
    st.sampled_from(["event", "command"]),
    st.sampled_from(["up", "join", "status", "ack", "txack", "log", "down"]),
)


@settings(derandomize=True, database=None, max_examples=400, deadline=None)
@given(topic=_TOPICS)
def test_each_account_reaches_its_own_collectivitys_topics_only(topic: str) -> None:
    for tenant in TENANTS:
        lns = _lns(tenant)
        if ACL.allows(lns, "write", topic):
            assert _within(EVENTS[tenant], topic), (lns, topic)  # never another collectivity's, nor commands
        if ACL.allows(lns, "read", topic):
            assert _within(SPACE[tenant], topic), (lns, topic)
        if _within(EVENTS[tenant], topic):
            assert ACL.allows(lns, "write", topic)
    for connection in MQTT_CONNECTIONS:
        user = connection.username or ""
        assert not ACL.allows(user, "write", topic), (user, topic)
        assert ACL.allows(user, "read", topic) == _within(SUBSCRIPTIONS[connection.name], topic), (user, topic)
    assert not ACL.allows("someone-else", "read", topic) and not ACL.allows("someone-else", "write", topic)


def test_the_acl_model_reads_mosquittos_syntax() -> None:
    acl = parse_acl("topic read public/#\nuser a\ntopic x/#\ntopic deny x/secret\npattern write own/%u/#\n")
    assert acl.allows("anyone", "read", "public/1") and not acl.allows("anyone", "write", "public/1")
    assert acl.allows("a", "write", "x/1") and acl.allows("a", "read", "x/1")  # no keyword: readwrite
    assert not acl.allows("a", "read", "x/secret")
    assert acl.allows("b", "write", "own/b/1") and not acl.allows("b", "write", "own/a/1")
    with pytest.raises(AclSyntaxError):
        parse_acl("user a\ntopic\n")
    with pytest.raises(AclSyntaxError):
        parse_acl("acl everything\n")


# --- Mosquitto: a real broker with the compose configuration (integration) --------------------

WAIT_S = 5.0


def _local_conf(port: int, workdir: Path) -> str:
    """The compose mosquitto.conf for 127.0.0.1:``port``: every path under a mount of the
    service becomes the file it mounts (the repository's ACL, the test's password file)."""
    files = {}
    for mount in mounts("mosquitto"):
        if mount.source.startswith("./"):  # the repository's file
            files[mount.target] = COMPOSE / mount.source
        elif required(mount.source):  # the operator's file: the test makes its own
            files[mount.target] = workdir / Path(mount.target).name
    lines = []
    for line in MOSQUITTO_CONF_TEXT.splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif key == "persistence_location":
            line = f"persistence_location {workdir}/"
        elif value in files:
            line = f"{key} {files[value]}"
        lines.append(line)
    # Mosquitto started as root would switch to a "mosquitto" user that cannot read this folder
    lines += [f"log_dest file {workdir / 'mosquitto.log'}", "log_type all", f"user {getpass.getuser()}"]
    return "\n".join(lines) + "\n"


class _ComposeMosquitto(MosquittoBroker):
    """The demo broker's process handling, with the compose configuration."""

    def _write_config(self) -> None:
        self.config_file.write_text(_local_conf(self.port, self.workdir), encoding="utf-8")


def _password(user: str) -> str:
    return f"test-only-{user}"


@pytest.fixture(scope="module")
def compose_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_ComposeMosquitto]:
    workdir = tmp_path_factory.mktemp("compose-mosquitto")
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.fail("mosquitto_passwd is not installed (Debian package mosquitto): run `make setup`", pytrace=False)
    passwd = workdir / Path(mount_at("mosquitto", MOSQUITTO_CONF["password_file"][0]).target).name
    for index, user in enumerate(sorted(ACL.users)):
        subprocess.run([tool, *(["-c"] if index == 0 else []), "-b", str(passwd), user, _password(user)], check=True)
    try:
        broker = _ComposeMosquitto(workdir)
        broker.start()
    except MosquittoError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class _Client:
    """An MQTT v5 client; what the broker answers (CONNACK, SUBACK, PUBACK, messages,
    disconnections) arrives in one queue, in the order the client saw it."""

    paho: mqtt.Client
    events: queue.Queue[tuple[str, Any]]

    def next(self, kind: str) -> Any:
        event, value = self.events.get(timeout=WAIT_S)
        assert event == kind, f"expected {kind}, got {event} {value}"
        return value

    def publish(self, topic: str, payload: bytes) -> Any:
        """Publish at QoS 1 and return the PUBACK's reason code (v5: 'Not authorized' when refused)."""
        self.paho.publish(topic, payload, qos=1)
        return self.next("puback")

    def subscribe(self, topic: str) -> None:
        self.paho.subscribe(topic, qos=1)
        assert [str(c) for c in self.next("suback")] == ["Granted QoS 1"]


@contextmanager
def _connected(
    broker: MosquittoBroker, user: str | None, password: str | None = None, client_id: str = ""
) -> Iterator[_Client]:
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if user is not None:
        client.username_pw_set(user, password if password is not None else _password(user))
    client.on_connect = lambda c, u, flags, code, props: events.put(("connack", code))
    client.on_subscribe = lambda c, u, mid, codes, props: events.put(("suback", codes))
    client.on_publish = lambda c, u, mid, code, props: events.put(("puback", code))
    client.on_message = lambda c, u, message: events.put(("message", (message.topic, message.payload)))
    client.on_disconnect = lambda c, u, flags, code, props: events.put(("disconnect", code))
    client.connect(*broker.address)
    client.loop_start()
    try:
        yield _Client(client, events)
    finally:
        client.disconnect()
        client.loop_stop()


@contextmanager
def _logged_in(broker: MosquittoBroker, user: str, client_id: str = "") -> Iterator[_Client]:
    with _connected(broker, user, client_id=client_id) as client:
        assert str(client.next("connack")) == "Success", user
        yield client


def _event(tenant: str, dev_eui: str, event: str = "up") -> str:
    application = next(c.application for c in MQTT_CONNECTIONS if c.collectivity == tenant)
    return f"application/{application}/device/{dev_eui}/event/{event}"


def _adapter(tenant: str) -> str:
    return next(c.username or "" for c in MQTT_CONNECTIONS if c.collectivity == tenant)


@pytest.mark.integration
def test_mosquitto_refuses_anonymous_clients_and_wrong_passwords(compose_mosquitto: _ComposeMosquitto) -> None:
    for user, password in ((None, None), (_lns("ville"), "not-its-password"), ("someone-else", "x" * 12)):
        with _connected(compose_mosquitto, user, password) as client:
            assert client.next("connack").is_failure, user


def _refused(broker: MosquittoBroker, user: str, topic: str) -> None:
    """``user`` publishes on ``topic`` and Mosquitto refuses it (v5 PUBACK 'Not authorized').

    On a connection of its own: before 2.0.22 (this machine's is older than the compose
    image), with ``max_queued_messages 0``, Mosquitto closes a connection after a refused
    publish (eclipse-mosquitto/mosquitto#3244)."""
    with _logged_in(broker, user) as client:
        assert str(client.publish(topic, f"forged by {user}".encode())) == "Not authorized"


@pytest.mark.integration
def test_an_lns_account_publishes_its_own_collectivitys_events_only(compose_mosquitto: _ComposeMosquitto) -> None:
    """ville's network server publishes a forged region event: refused and never delivered.
    Mosquitto hands a message to its subscribers before acknowledging it, so a forged event
    that got through would reach the region's adapter account before the region's own
    event, published after that acknowledgement."""
    broker = compose_mosquitto
    everything = "application/+/device/+/event/+"  # wider than the ACL grants: delivery is still checked
    with _logged_in(broker, _adapter("ville")) as ville_reader, _logged_in(broker, _adapter("region")) as region_reader:
        ville_reader.subscribe(everything)
        region_reader.subscribe(everything)
        _refused(broker, _lns("ville"), _event("region", "0004a30b001c0530"))
        with _logged_in(broker, _lns("ville")) as ville_lns, _logged_in(broker, _lns("region")) as region_lns:
            assert str(ville_lns.publish(_event("ville", "70b3d57ed0001a01"), b"ville 1")) == "Success"
            assert str(region_lns.publish(_event("region", "0004a30b001c0530"), b"region 1")) == "Success"
            assert str(ville_lns.publish(_event("ville", "70b3d57ed0001a01"), b"ville 2")) == "Success"
        assert region_reader.next("message") == (_event("region", "0004a30b001c0530"), b"region 1")
        assert ville_reader.next("message") == (_event("ville", "70b3d57ed0001a01"), b"ville 1")
        assert ville_reader.next("message") == (_event("ville", "70b3d57ed0001a01"), b"ville 2")  # region's never came


@pytest.mark.integration
def test_an_adapter_account_only_reads(compose_mosquitto: _ComposeMosquitto) -> None:
    """Every adapter account's publish is refused, on every collectivity's topics; the reader
    of each collectivity (its own adapter account, which no other login may share) gets its
    network server's next event, and no forged one before it."""
    broker = compose_mosquitto
    for reader_tenant in TENANTS:
        with _logged_in(broker, _lns(reader_tenant)) as lns, _logged_in(broker, _adapter(reader_tenant)) as reader:
            reader.subscribe(_event(reader_tenant, "+", "+"))
            for forger in TENANTS:
                if forger != reader_tenant:  # logging in as the reader's account would close the reader
                    for target in TENANTS:
                        _refused(broker, _adapter(forger), _event(target, "0004a30b001c0530"))
            assert str(lns.publish(_event(reader_tenant, "0004a30b001c0530"), b"real")) == "Success"
            assert reader.next("message") == (_event(reader_tenant, "0004a30b001c0530"), b"real")


@pytest.mark.integration
def test_an_account_cannot_take_over_anothers_session_by_its_client_id(compose_mosquitto: _ComposeMosquitto) -> None:
    """With a shared client identifier Mosquitto would close the first connection: the
    region's account could keep the city's adapter off the broker. The client identifier is
    the username, so the adapter stays connected and goes on receiving."""
    broker = compose_mosquitto
    client_id = "ngsild-adapter-ville-chirpstack"
    with _logged_in(broker, _adapter("ville"), client_id) as reader, _logged_in(broker, _lns("ville")) as lns:
        reader.subscribe(_event("ville", "+", "+"))
        with _logged_in(broker, _lns("region"), client_id):
            assert str(lns.publish(_event("ville", "70b3d57ed0001a01"), b"after")) == "Success"
            assert reader.next("message") == (_event("ville", "70b3d57ed0001a01"), b"after")  # not "disconnect"
