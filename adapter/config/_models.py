"""The typed configuration: what the loader builds and every process reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from adapter.exceptions import ConfigError
from adapter.httpserver import ServerLimits
from adapter.mapping.entities import DeviceRecord
from adapter.provenance.integrity.keys import default_key_directory
from adapter.sources._common import ParseLimits
from adapter.uplink import Origin

from ._common import _required_secret

__all__ = [
    "AdapterConfig",
    "BrokerSettings",
    "Collectivity",
    "Connection",
    "DEFAULT_PERSONAL_ATTRIBUTES",
    "GatewaySettings",
    "IssuerSettings",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ENTITIES",
    "MQTT_PORT",
    "MQTT_TLS_PORT",
    "ProvenanceSettings",
    "RegistrySettings",
    "TlsSettings",
]

#: Orion-LD's limits for one batch: 1,000 entities (I#1951), a body under 1 MiB
MAX_BATCH_ENTITIES = 1000
MAX_BATCH_BYTES = 1024 * 1024
#: MQTT's registered ports: plaintext, and over TLS
MQTT_PORT, MQTT_TLS_PORT = 1883, 8883


@dataclass(frozen=True, slots=True)
class Collectivity:
    tenant: str
    name: str
    identifiers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS of an MQTT connection (``tls = true``): what to trust and what to present.

    There is deliberately no way to switch verification off: a private CA or a self-signed
    server certificate goes in ``ca_file``, a certificate naming another host than ``host``
    is matched with ``server_name``. ``adapter.sources.mqtt_tls`` builds the SSL context."""

    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None  # client certificate (chain); always with key_file
    key_file: Path | None = None
    server_name: str | None = None  # the name to verify in the server's certificate (default: host)


@dataclass(frozen=True, slots=True)
class Connection:
    name: str
    collectivity: str
    lns: str
    transport: str  # "mqtt" or "webhook"
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    application: str | None = None  # restrict to one LNS application
    client_id: str | None = None
    webhook_token_env: str | None = None  # webhooks: name of the variable holding the bearer token
    webhook_token: str | None = field(default=None, repr=False)
    allow_unauthenticated: bool = False  # webhooks: explicit opt-out, for a local demo only
    password_env: str | None = None  # MQTT: name of the variable holding the password (or API key)
    tls: TlsSettings | None = None  # MQTT: None is plaintext

    @property
    def origin(self) -> Origin:
        return Origin(tenant=self.collectivity, lns_id=self.name)

    def required_password(self) -> str | None:
        """The MQTT password, or None when no ``password_env`` is named; ``ConfigError`` when
        the variable is named but unset or empty. Called by the process that connects, at its
        start (like ``required_service_token``): the gateway reads the same file without it."""
        if not self.password_env:
            return None
        if not self.password:
            raise ConfigError(f"connection {self.name}: password_env names {self.password_env}, which is not set")
        return self.password


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """How entities reach the NGSI-LD broker (the ``[broker]`` table); see the module docstring."""

    url: str | None = None
    #: where temporal queries go when another service than the broker answers them (Mintaka
    #: beside Orion-LD, which answers 501); None: ``url``. Temporal writes always go to ``url``.
    temporal_url: str | None = None
    token_env: str | None = None
    token: str | None = field(default=None, repr=False)
    batch_max_entities: int = MAX_BATCH_ENTITIES
    batch_max_bytes: int = MAX_BATCH_BYTES
    batch_delay_s: float = 0.05
    max_in_flight: int = 4
    retry_initial_s: float = 0.5
    retry_max_s: float = 60.0
    request_timeout_s: float = 30.0


#: Smart Data Models attributes that name, locate or link to a person or a household's device.
DEFAULT_PERSONAL_ATTRIBUTES = frozenset(
    {"name", "alternateName", "description", "owner", "address", "location", "refDevice"}
)


@dataclass(frozen=True, slots=True)
class ProvenanceSettings:
    """The integrity log and the RDF index (the ``[provenance]`` table); see the module docstring."""

    key_dir: Path = field(default_factory=default_key_directory)
    log_origin: str = "ngsild-adapter.localhost"
    payload_retention_days: float = 30.0
    checkpoint_interval_s: float = 10.0
    store: str = "embedded"
    sparql_query_url: str | None = None
    sparql_update_url: str | None = None
    sparql_store_url: str | None = None
    index_batch: int = 2000
    query_timeout_s: float = 10.0
    query_max_results: int = 10_000
    open_to_network: bool = False  # /sparql, /provenance/..., /metrics answer other machines (with the secret)
    service_token_env: str | None = None  # the variable holding the secret those paths require
    service_token: str | None = field(default=None, repr=False)
    index_in: str = "listen"  # which process keeps the RDF index: "listen" (the adapter) or "serve"
    #: attributes whose values the RDF index keeps in the personal graphs (adapter.provenance.rdf)
    personal_attributes: frozenset[str] = DEFAULT_PERSONAL_ATTRIBUTES
    access_log: Path | None = None  # the gateway's access log (default: <state_dir>/gateway/access.sqlite)
    #: UTC dates from which a new pseudonym key applies (adapter.provenance.pseudonyms), sorted
    pseudonym_rotations: tuple[date, ...] = ()

    def required_service_token(self) -> str | None:
        """The secret the data paths require, or None when none is configured; raises
        ``ConfigError`` when ``service_token_env`` names a variable that is not set or holds a
        weak secret (called by the processes serving those paths, at start: the same file
        serves processes that have no use for the secret)."""
        return _required_secret(self.service_token_env, self.service_token, "[provenance] service_token_env")


@dataclass(frozen=True, slots=True)
class IssuerSettings:
    """A trusted token issuer (a Keycloak realm) of the gateway."""

    issuer: str
    organization: str | None = None
    jwks_url: str | None = None


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """The sharing gateway (the ``[gateway]`` table); see the module docstring."""

    host: str = "127.0.0.1"
    port: int = 8081
    public_url: str | None = None
    broker_url: str | None = None
    policies_dir: Path | None = None
    audience: str = "ngsild-gateway"
    allowed_notification_urls: tuple[str, ...] = ()
    issuers: tuple[IssuerSettings, ...] = ()
    adapter_url: str | None = None  # `ngsild-adapter serve` (/sparql, /provenance, /logs), narrowed per principal
    adapter_token_env: str | None = None  # the variable holding the secret sent to adapter_url
    adapter_token: str | None = field(default=None, repr=False)
    #: networks a notification endpoint may resolve to although not public (adapter.gateway.endpoints)
    allow_private_notification_addresses: tuple[IPv4Network | IPv6Network, ...] = ()
    #: a period's cells are published this long after it ends (late uplinks count), then never change
    cell_publication_delay_s: float = 3600.0

    def required_adapter_token(self) -> str | None:
        """The secret sent to ``adapter_url`` as a bearer token, or None when none is
        configured; raises ``ConfigError`` when ``adapter_token_env`` names a variable that is
        not set or holds a weak secret (called by the gateway at start)."""
        return _required_secret(self.adapter_token_env, self.adapter_token, "[gateway] adapter_token_env")


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """A network server's device registry to import (a ``[[registry]]`` entry; ``adapter.registry``).

    ``lns`` and ``collectivity`` are the connection's: an import never chooses a collectivity."""

    connection: str
    lns: str
    collectivity: str
    url: str
    applications: tuple[str, ...]
    token_env: str
    token: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    interval_s: float = 3600.0
    timeout_s: float = 30.0
    max_devices: int = 10_000


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    path: Path | None
    models_dir: Path
    state_dir: Path
    limits: ParseLimits
    collectivities: Mapping[str, Collectivity]
    connections: tuple[Connection, ...]
    devices: Mapping[str, DeviceRecord]
    pseudonym_key: bytes | None = field(default=None, repr=False)
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    outbox_max_depth: int = 100_000
    contexts_url: str | None = None  # where the broker fetches the adapter's served contexts
    provenance: ProvenanceSettings = field(default_factory=ProvenanceSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    http: ServerLimits = field(default_factory=ServerLimits)  # the HTTP servers' limits ([http])
    registries: tuple[RegistrySettings, ...] = ()  # network-server registries to import ([[registry]])

    def connection(self, name: str) -> Connection:
        for c in self.connections:
            if c.name == name:
                return c
        raise ConfigError(f"no connection named {name!r} in the configuration")

    def default_origin(self, lns: str) -> Origin:
        """The origin of events given by hand (CLI): the first connection for that LNS."""
        for c in self.connections:
            if c.lns == lns:
                return c.origin
        tenant = next(iter(self.collectivities), "default")
        return Origin(tenant=tenant, lns_id=f"{lns}-cli")
