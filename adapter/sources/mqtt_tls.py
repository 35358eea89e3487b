"""TLS for MQTT connections: the SSL context of a ``[[connection]]``, and plain words for its failures.

Why it is built this way
    Verified, always. The context checks the server's certificate chain (against ``ca_file``,
    or the system's CAs) and its name (``host``, or ``tls_server_name``), with TLS 1.2 at
    least. There is no switch to turn verification off: an unverified TLS session sends the
    password (a TTS API key, a ChirpStack account) to whoever sits on the path, which is worse
    than it looks. A private CA or a self-signed server certificate goes in ``ca_file``.

    Read when connecting. The files are read each time a connection is made, so a renewed
    client certificate (ChirpStack's expire) is used at the next reconnection without a
    restart; ``consume_mqtt`` reads them once before its first connection and refuses to
    start (``MqttTlsError``, a ``ConfigError``) when they are missing, unreadable, not PEM,
    mismatched, encrypted or out of their validity period. ``load_config`` does not read them:
    the gateway and ``serve`` load the same file where the certificates are not mounted.

    Plain words. OpenSSL reports a refused handshake in its own terms, and with TLS 1.3 a
    client certificate refused by the broker only shows after the handshake, as an alert on
    the first read (the broker then closes before CONNACK). ``describe_tls_failure`` turns
    the alerts and verification errors an operator meets into what to check.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from adapter.config import Connection
from adapter.exceptions import ConfigError

__all__ = ["MqttTlsError", "describe_tls_failure", "tls_context"]


class MqttTlsError(ConfigError):
    """A connection's TLS files cannot be used (missing, unreadable, invalid, expired...)."""


class _EncryptedKey(Exception):
    """The key file asks for a passphrase (OpenSSL would otherwise prompt on the terminal)."""


def _no_passphrase() -> str:
    raise _EncryptedKey


class _ClosingSocket(ssl.SSLSocket):
    """An SSL socket that closes itself when its handshake fails: paho 2.2 leaves it open
    (``_create_socket`` drops it unclosed), one file descriptor per refused attempt until
    the garbage collector finds it."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except ssl.SSLError:
            self.close()
            raise
        except OSError as exc:  # reset or closed: what a plaintext port does to a ClientHello
            self.close()
            raise OSError(exc.errno, f"the connection closed during the TLS handshake ({exc})") from exc
        except BaseException:
            self.close()
            raise


class _NamedContext(ssl.SSLContext):
    """An SSL context that verifies (and sends as SNI) ``server_name`` whatever host it connects to.

    paho passes the host it connects to as ``server_hostname``; ``tls_server_name`` replaces it
    here, for a broker reached by address or alias whose certificate names another host."""

    server_name: str | None = None

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:  # noqa: ANN401
        if self.server_name is not None:
            kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


def tls_context(connection: Connection, *, now: datetime | None = None) -> ssl.SSLContext | None:
    """The SSL context of ``connection``, or None for a plaintext one; reads its files now.

    Raises ``MqttTlsError`` with one line naming the key and the file when a file cannot be
    used, or when the client certificate is not valid at ``now`` (the broker would refuse it
    with an alert that says less)."""
    settings = connection.tls
    if settings is None:
        return None
    where = f"connection {connection.name}"
    context = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.server_name = settings.server_name
    context.sslsocket_class = _ClosingSocket
    if settings.ca_file is not None:
        _readable(settings.ca_file, "ca_file", where)
        try:
            context.load_verify_locations(cafile=str(settings.ca_file))
        except ssl.SSLError as exc:
            raise MqttTlsError(f"{where}: ca_file {settings.ca_file} holds no PEM certificate ({exc.reason})") from exc
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if settings.cert_file is not None and settings.key_file is not None:
        _readable(settings.cert_file, "cert_file", where)
        _readable(settings.key_file, "key_file", where)
        _check_validity(settings.cert_file, where, now or datetime.now(UTC))
        try:
            context.load_cert_chain(str(settings.cert_file), str(settings.key_file), password=_no_passphrase)
        except _EncryptedKey as exc:
            raise MqttTlsError(
                f"{where}: key_file {settings.key_file} is encrypted; give the key unencrypted "
                "(protected by its file permissions)"
            ) from exc
        except ssl.SSLError as exc:
            problem = (
                "key_file does not match cert_file"
                if "KEY_VALUES_MISMATCH" in str(exc)
                else f"cert_file {settings.cert_file} or key_file {settings.key_file} is not a PEM certificate "
                f"and key ({exc.reason})"
            )
            raise MqttTlsError(f"{where}: {problem}") from exc
    return context


def _readable(path: Path, key: str, where: str) -> None:
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError as exc:
        raise MqttTlsError(f"{where}: {key} {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise MqttTlsError(f"{where}: {key} {path} is a folder, not a file") from exc
    except OSError as exc:
        raise MqttTlsError(f"{where}: {key} {path} cannot be read ({exc.strerror})") from exc


def _check_validity(cert_file: Path, where: str, now: datetime) -> None:
    """Refuse a client certificate outside its validity period (the first in the file: the leaf)."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except ValueError as exc:
        raise MqttTlsError(f"{where}: cert_file {cert_file} holds no PEM certificate") from exc
    if now > certificate.not_valid_after_utc:
        raise MqttTlsError(
            f"{where}: the client certificate in cert_file {cert_file} expired on "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; the broker would refuse it"
        )
    if now < certificate.not_valid_before_utc:
        raise MqttTlsError(
            f"{where}: the client certificate in cert_file {cert_file} is valid only from "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (check this machine's clock)"
        )


#: OpenSSL's words (verification errors, alerts the broker sends) -> what to check
_DIAGNOSES = (
    ("certificate required", "the broker requires a client certificate (cert_file and key_file)"),
    ("alert unknown ca", "the broker does not trust the client certificate (signed by a CA it does not know)"),
    ("alert bad certificate", "the broker refused the client certificate"),
    ("alert certificate expired", "the broker refused the client certificate as expired"),
    ("alert certificate revoked", "the broker refused the client certificate as revoked"),
    ("alert access denied", "the broker refused the client certificate"),
    ("certificate has expired", "the server's certificate has expired"),
    ("not yet valid", "the server's certificate is not valid yet (check this machine's clock)"),
    ("hostname mismatch", "the server's certificate does not name this host (see tls_server_name)"),
    ("ip address mismatch", "the server's certificate does not name this address (see tls_server_name)"),
    ("self-signed certificate", "the server's certificate is not signed by a CA in ca_file (or the system's)"),
    ("unable to get local issuer", "the server's certificate is not signed by a CA in ca_file (or the system's)"),
    ("wrong version number", "the port does not speak TLS (a plaintext MQTT port?)"),
    (
        "closed during the tls handshake",
        "the broker closed the connection during the TLS handshake (a plaintext MQTT port?)",
    ),
    ("unsupported protocol", "the server offers no TLS version from 1.2 on"),
)


def describe_tls_failure(text: str) -> str | None:
    """What an OpenSSL error (``str`` of an ``ssl.SSLError``, or paho's line quoting it) means
    for the operator, or None when it is not one this module knows."""
    lowered = text.lower()
    for words, meaning in _DIAGNOSES:
        if words in lowered:
            return meaning
    return None
