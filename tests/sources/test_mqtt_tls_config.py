"""MQTT TLS and credentials in ``[[connection]]``: what the loader refuses, what ``listen`` reads.

The loader checks the shape (one-line ``ConfigError`` naming the file, the connection and the
key); the files and the password variable are read by the consuming process at its start
(``tls_context``, ``Connection.required_password``), since the gateway and ``serve`` load the
same file without them. No broker here: tests/integration/test_mqtt_tls.py has the handshakes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.config import Connection, load_config
from adapter.exceptions import ConfigError
from adapter.sources.mqtt import consume_mqtt
from adapter.sources.mqtt_tls import MqttTlsError, describe_tls_failure, tls_context
from tests.integration.certificates import Authority

HEAD = """
[[collectivity]]
tenant = "ville"
name = "Ville"

[[connection]]
name = "ville-lns"
collectivity = "ville"
lns = "chirpstack"
"""


def load(tmp_path: Path, keys: str, env: dict[str, str] | None = None) -> Connection:
    """The connection of a file in ``tmp_path/conf`` (with a host unless ``keys`` gives one)."""
    path = tmp_path / "conf" / "adapter.toml"
    path.parent.mkdir(exist_ok=True)
    host = "" if "host =" in keys else 'host = "mqtt.ville.example"\n'
    path.write_text(HEAD + host + keys, encoding="utf-8")
    return load_config(path, env=env or {}).connection("ville-lns")


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    folder = tmp_path / "conf" / "certs"
    folder.mkdir(parents=True)
    return Authority(folder, "ville")


def test_tls_defaults_to_port_8883_and_resolves_files_next_to_the_configuration(tmp_path: Path) -> None:
    connection = load(
        tmp_path, 'tls = true\nca_file = "certs/ca.pem"\ncert_file = "certs/a.pem"\nkey_file = "certs/a.key"\n'
    )
    assert connection.port == 8883
    assert connection.tls is not None
    assert connection.tls.ca_file == (tmp_path / "conf" / "certs" / "ca.pem").resolve()
    assert connection.tls.key_file == (tmp_path / "conf" / "certs" / "a.key").resolve()
    assert load(tmp_path, "").port == 1883 and load(tmp_path, "").tls is None


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('tls = "yes"\n', "tls must be true or false, not 'yes'"),
        ('ca_file = "ca.pem"\n', "ca_file given but tls is not true"),
        ('tls = false\ncert_file = "a.pem"\nkey_file = "a.key"\n', "cert_file, key_file given but tls is not true"),
        ('tls = true\ncert_file = "a.pem"\n', "cert_file and key_file go together"),
        ('tls = true\nkey_file = "a.key"\n', "cert_file and key_file go together"),
        ("tls = true\nca_file = 3\n", "ca_file must be a file path"),
        ("tls = true\ntls_insecure = true\n", "tls_insecure is not supported"),
        ('tls = true\nca_flie = "ca.pem"\n', "unknown key(s) ca_flie"),
        ('tls = true\ntls_server_name = "not a name!"\n', "tls_server_name must be a host name"),
        ('password_env = "VILLE_KEY"\n', "password_env needs a username"),
        ('username = "a"\npassword_env = ""\n', "password_env must be the name of an environment variable"),
        ("port = 70000\n", "port must be 1 to 65535, not 70000"),
        ('port = "mqtts"\n', "port must be an integer, not 'mqtts'"),
        ("username = 42\n", "username must be a non-empty string, not 42"),
        ('transport = "webhook"\ntoken_env = "T"\ntls = true\n', "tls applies to MQTT connections"),
    ],
)
def test_the_loader_refuses_with_one_line_naming_the_key(tmp_path: Path, keys: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, keys)
    text = str(refused.value)
    assert message in text and "connection ville-lns" in text
    assert "\n" not in text


def test_the_password_is_read_by_the_process_that_connects_never_kept_in_the_file(tmp_path: Path) -> None:
    keys = 'tls = true\nusername = "ville@ttn"\npassword_env = "VILLE_TTS_KEY"\n'
    connection = load(tmp_path, keys, env={"VILLE_TTS_KEY": "NNSXS.SECRET"})
    assert connection.required_password() == "NNSXS.SECRET"
    assert "NNSXS.SECRET" not in repr(connection)
    # the gateway loads the same file without the variable: loading works, connecting does not
    unset = load(tmp_path, keys, env={})
    with pytest.raises(ConfigError, match="^connection ville-lns: password_env names VILLE_TTS_KEY, which is not set$"):
        unset.required_password()
    with pytest.raises(ConfigError, match="which is not set"):
        load(tmp_path, keys, env={"VILLE_TTS_KEY": ""}).required_password()


def test_the_ssl_context_verifies_the_server_and_its_name_from_tls_1_2(tmp_path: Path, ca: Authority) -> None:
    issued = ca.client("adapter-ville")
    connection = load(
        tmp_path,
        f'tls = true\nca_file = "certs/{ca.ca_file.name}"\n'
        f'cert_file = "certs/{issued.cert_file.name}"\nkey_file = "certs/{issued.key_file.name}"\n',
    )
    context = tls_context(connection)
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "ville CA"),),)]
    assert tls_context(load(tmp_path, "")) is None
    system = tls_context(load(tmp_path, "tls = true\n"))  # no ca_file: the system's CAs
    assert system is not None and system.verify_mode == ssl.CERT_REQUIRED


def _files(tmp_path: Path, ca: Authority, **names: str) -> str:
    issued = ca.client("adapter-ville")
    chosen = {
        "ca_file": f"certs/{ca.ca_file.name}",
        "cert_file": f"certs/{issued.cert_file.name}",
        "key_file": f"certs/{issued.key_file.name}",
    } | names
    return "tls = true\n" + "".join(f'{k} = "{v}"\n' for k, v in chosen.items())


@pytest.mark.parametrize(
    ("prepare", "names", "message"),
    [
        (None, {"ca_file": "certs/missing.pem"}, r"ca_file .*missing\.pem does not exist"),
        (None, {"ca_file": "certs"}, r"ca_file .*certs is a folder, not a file"),
        ("garbage.pem", {"ca_file": "certs/garbage.pem"}, r"ca_file .*garbage\.pem holds no PEM certificate"),
        ("garbage.pem", {"cert_file": "certs/garbage.pem"}, r"cert_file .*garbage\.pem holds no PEM certificate"),
        (None, {"key_file": "certs/missing.key"}, r"key_file .*missing\.key does not exist"),
        ("other.key", {"key_file": "certs/other.key"}, r"key_file does not match cert_file"),
        ("encrypted.key", {"key_file": "certs/encrypted.key"}, r"key_file .*encrypted\.key is encrypted"),
    ],
)
def test_unusable_files_are_refused_before_connecting(
    tmp_path: Path, ca: Authority, prepare: str | None, names: dict[str, str], message: str
) -> None:
    folder = ca.folder
    if prepare == "garbage.pem":
        (folder / prepare).write_text("not a certificate\n")
    elif prepare == "other.key":
        other = ca.client("someone-else")
        (folder / prepare).write_bytes(other.key_file.read_bytes())
    elif prepare == "encrypted.key":
        issued = ca.client("adapter-ville", key_password=b"passphrase")
        names = names | {"cert_file": f"certs/{issued.cert_file.name}"}
        (folder / prepare).write_bytes(issued.key_file.read_bytes())
    with pytest.raises(MqttTlsError, match=f"^connection ville-lns: {message}"):
        tls_context(load(tmp_path, _files(tmp_path, ca, **names)))


def test_a_client_certificate_outside_its_validity_is_refused_before_the_broker_sees_it(
    tmp_path: Path, ca: Authority
) -> None:
    connection = load(tmp_path, _files(tmp_path, ca))
    assert tls_context(connection, now=ca.now) is not None
    with pytest.raises(MqttTlsError, match=r"the client certificate in cert_file .* expired on \d{4}-\d\d-\d\d"):
        tls_context(connection, now=ca.now + timedelta(days=2))
    with pytest.raises(MqttTlsError, match=r"is valid only from .* \(check this machine's clock\)"):
        tls_context(connection, now=ca.now - timedelta(days=1))


@pytest.mark.parametrize(
    ("openssl", "meaning"),
    [
        (
            "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required (_ssl.c:2580)",
            "the broker requires a client certificate",
        ),
        (
            "failed to receive on socket: [SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2580)",
            "the broker does not trust the client certificate",
        ),
        (
            "[SSL: SSLV3_ALERT_CERTIFICATE_EXPIRED] sslv3 alert certificate expired (_ssl.c:2580)",
            "the broker refused the client certificate as expired",
        ),
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)",
            "the server's certificate has expired",
        ),
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, certificate is not "
            "valid for 'mqtt.example'. (_ssl.c:1006)",
            "does not name this host (see tls_server_name)",
        ),
        ("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)", "the port does not speak TLS"),
    ],
)
def test_openssl_failures_are_told_in_plain_words(openssl: str, meaning: str) -> None:
    described = describe_tls_failure(openssl)
    assert described is not None and meaning in described


def test_an_unknown_failure_is_not_guessed() -> None:
    assert describe_tls_failure("[Errno 111] Connection refused") is None


def _nothing(*args: Any, **kwargs: Any) -> None:  # noqa: ANN401
    raise AssertionError("no message is expected")


@pytest.mark.parametrize(
    ("keys", "warned"),
    [
        ("tls = true\nport = 1883\n", "tls = true on port 1883, MQTT's plaintext port"),
        ("port = 8883\n", "plaintext on port 8883, MQTT's port for TLS"),
        ("tls = true\n", None),
        ("", None),
    ],
)
async def test_a_port_that_contradicts_tls_is_warned_about(
    tmp_path: Path, keys: str, warned: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    stop = asyncio.Event()
    stop.set()  # the checks run, then the consumer returns without connecting
    with caplog.at_level(logging.WARNING, logger="adapter.sources.mqtt"):
        await consume_mqtt(load(tmp_path, keys), _nothing, stop=stop)
    found = [r.getMessage() for r in caplog.records if r.name == "adapter.sources.mqtt"]
    if warned is None:
        assert found == []
    else:
        assert len(found) == 1 and warned in found[0], found


async def test_the_consumer_refuses_to_start_without_its_files_or_password(tmp_path: Path) -> None:
    missing = load(tmp_path, 'tls = true\nca_file = "nowhere/ca.pem"\n')
    with pytest.raises(MqttTlsError, match=r"ca_file .*ca\.pem does not exist"):
        await consume_mqtt(missing, _nothing)
    unset = load(tmp_path, 'username = "ville"\npassword_env = "VILLE_MQTT_PASSWORD"\n')
    with pytest.raises(ConfigError, match="password_env names VILLE_MQTT_PASSWORD, which is not set"):
        await consume_mqtt(unset, _nothing)


_VALUE = st.one_of(
    st.booleans(),
    st.integers(-10, 70000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.integers(0, 3), max_size=2),
)
_KEYS = (
    "tls",
    "ca_file",
    "cert_file",
    "key_file",
    "tls_server_name",
    "port",
    "host",
    "username",
    "password_env",
    "transport",
    "tls_insecure",
    "client_id",
)


def _toml(value: Any) -> str:  # noqa: ANN401
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)  # ints, and strings (JSON's escapes are TOML's)


@settings(
    derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUE, max_size=6))
def test_any_connection_table_loads_or_is_one_config_error(tmp_path: Path, table: dict[str, Any]) -> None:
    keys = "".join(f"{k} = {_toml(v)}\n" for k, v in table.items())
    try:
        connection = load(tmp_path, keys, env={"VILLE_KEY": "x"})
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(connection.host, str) and 1 <= connection.port <= 65535
    assert (connection.tls is not None) == (table.get("tls") is True)
    if connection.tls is not None:
        assert (connection.tls.cert_file is None) == (connection.tls.key_file is None)


@pytest.mark.parametrize(
    ("keys", "warned"),
    [
        ("", "the password of adapter-ville goes in clear to mqtt.ville.example:1883 (no TLS)"),
        ('host = "127.0.0.1"\n', None),
        ("tls = true\n", None),
    ],
)
async def test_a_password_sent_in_clear_beyond_this_host_is_warned_about(
    tmp_path: Path, keys: str, warned: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    keys = 'username = "adapter-ville"\npassword_env = "VILLE_PW"\n' + keys
    stop = asyncio.Event()
    stop.set()
    with caplog.at_level(logging.WARNING, logger="adapter.sources.mqtt"):
        await consume_mqtt(load(tmp_path, keys, env={"VILLE_PW": "s3cret"}), _nothing, stop=stop)
    found = [r.getMessage() for r in caplog.records if r.name == "adapter.sources.mqtt"]
    assert found == ([] if warned is None else [m for m in found if warned in m]) and (warned is None or found)
    assert all("s3cret" not in m for m in found)
