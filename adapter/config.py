"""The adapter's configuration: one TOML file, with environment variables on top.

```toml
[adapter]
models = "models"                 # device profiles folder (relative to this file)
state_dir = "var"                 # SQLite files: dead letters, pipeline state, outbox
contexts_url = "http://adapter:8080/contexts"   # optional: entities name the adapter's served
                                  # copies of their @contexts (the broker fetches them there)
max_payload_bytes = 256
max_future_skew_s = 600

[[collectivity]]
tenant = "metropole"              # NGSI-LD tenant (NGSILD-Tenant header)
name = "Métropole de Lyon"
identifiers = { siren = "200046977" }

[[connection]]
name = "metropole-chirpstack"
collectivity = "metropole"
lns = "chirpstack"                # or "tts"
transport = "mqtt"                # or "webhook"
host = "127.0.0.1"
port = 1883
username = "adapter"
password_env = "METROPOLE_MQTT_PASSWORD"   # the secret itself never goes in the file

[[connection]]
name = "region-tts"
collectivity = "region"
lns = "tts"
host = "eu1.cloud.thethings.network"
tls = true                        # MQTT over TLS: server certificate and name verified, TLS 1.2+;
                                  # port defaults to 8883
ca_file = "certs/ca.pem"          # optional (relative to this file): the CA(s) to trust instead of
                                  # the system's (a private CA, or a self-signed server certificate)
cert_file = "certs/adapter.pem"   # optional: client certificate (chain), e.g. ChirpStack's per
key_file = "certs/adapter.key"    # application one; with its unencrypted key (both or neither)
tls_server_name = "mqtt.example"  # optional: the name the server certificate must carry, when
                                  # `host` is an address or an alias that the certificate does not name
username = "app@ttn"
password_env = "REGION_TTS_API_KEY"

[[connection]]
name = "eau-chirpstack"
collectivity = "eau"
lns = "chirpstack"
transport = "webhook"             # POST /webhooks/eau-chirpstack?event=up
token_env = "EAU_WEBHOOK_TOKEN"   # the LNS sends "Authorization: Bearer <token>"

[[device]]
dev_eui = "70b3d57ed0001a01"
collectivity = "metropole"        # optional: its events on another collectivity's connection are
                                  # dead letters (device_collectivity_mismatch)
name = "AQ station Part-Dieu"
location = { latitude = 45.7605, longitude = 4.8597 }
attributes = { refPointOfInterest = "urn:ngsi-ld:PointOfInterest:part-dieu" }

[[registry]]                      # import device names, tags and locations from a network server's
                                  # registry (adapter.registry); [[device]] entries win over imports
connection = "metropole-chirpstack"   # the imported devices belong to this connection's collectivity;
                                  # its lns says which API: ChirpStack v4 gRPC, or TTS v3 HTTP
url = "http://chirpstack:8080"    # ChirpStack: its API (https: TLS); TTS: e.g. https://eu1.cloud.thethings.network
applications = ["5e0e9a6a-3f6c-4b1e-9a39-2b1f5d1c8e11"]   # ChirpStack application ids (UUIDs) or TTS
                                  # application ids; default: the connection's `application`
token_env = "METROPOLE_CHIRPSTACK_API_TOKEN"   # the variable holding the API token (TTS: API key)
ca_file = "certs/ca.pem"          # optional (relative to this file): the CA to trust for https
interval_s = 3600                 # imported again this often (at least 10); a failure keeps the last import
timeout_s = 30                    # one request
max_devices = 10000               # per application; a longer list is refused (the last import is kept)

[broker]                          # the NGSI-LD broker the entities are written to
url = "http://orion:1026"         # its root (without /ngsi-ld/v1); absent: entities wait in the outbox
token_env = "BROKER_TOKEN"        # optional: the variable holding a bearer token for the broker
batch_max_entities = 1000         # per batch upsert; Orion-LD's limit, also the highest allowed
batch_max_bytes = 1048576         # batches stay strictly under this (Orion-LD refuses 1 MiB and more)
batch_delay_s = 0.05              # a partial batch leaves once its oldest entity waited this long
max_in_flight = 4                 # batches sent at once (never the same entity twice)
retry_initial_s = 0.5             # broker down or failing: first delay, doubled up to...
retry_max_s = 60                  # ...this cap (with jitter); the entities stay in the outbox
request_timeout_s = 30            # one batch request, connection included

[outbox]
max_depth = 100000                # entities waiting at most; beyond, ingest is pushed back

[http]                            # limits of the HTTP servers (listen's port, serve); adapter.httpserver
header_timeout_s = 10             # a request head must arrive within this (408, closed)
body_timeout_s = 30               # a request body must arrive within this once its head did (408, closed)
keepalive_timeout_s = 15          # an idle connection is closed after this
max_line_bytes = 8190             # request line and each header at most (400); max_field_bytes likewise
max_headers = 100                 # headers at most (400)
max_body_bytes = 1048576          # bodies at most (413); the webhooks take no more than the parsers (256 KiB)

[provenance]                      # see docs/provenance.md
key_dir = "/var/lib/ngsild-adapter/keys"   # one log signing key per collectivity, created on
                                  # first run; refused inside a Git work tree. Default:
                                  # $XDG_DATA_HOME/ngsild-adapter/keys
log_origin = "adapter.example.org"   # logs are named <log_origin>/<tenant> in their checkpoints
payload_retention_days = 30       # raw payloads kept this long (0: never kept); digests stay
checkpoint_interval_s = 10        # a signed tree head per grown log at this interval
store = "embedded"                # RDF index: "embedded" (pyoxigraph in <state_dir>/rdf) or "sparql"
sparql_query_url = "http://oxigraph:7878/query"    # store = "sparql": a SPARQL 1.1 store
sparql_update_url = "http://oxigraph:7878/update"
sparql_store_url = "http://oxigraph:7878/store"    # Graph Store Protocol (bulk writes)
index_batch = 2000                # records indexed per round, off the ingestion path
query_timeout_s = 10              # /sparql: time and result-size limits
query_max_results = 10000
service_token_env = "NGSILD_ADAPTER_SERVICE_TOKEN"   # optional: the variable holding the secret
                                  # that /sparql, /provenance/... and /metrics require of every caller
                                  # ("Authorization: Bearer <secret>", the gateway sends it); at least
                                  # 32 characters. Named but unset: `serve`/`listen --http-port` refuse to start
open_to_network = false           # without a secret, those paths answer this machine only; true (other
                                  # machines, with the secret) needs service_token_env (the logs and
                                  # keys are always public)
index_in = "listen"               # "serve": the adapter only logs; `ngsild-adapter serve`, its own
                                  # process (the other core), keeps the RDF index and serves it
personal_attributes = ["name", "alternateName", "description", "owner", "address", "location", "refDevice"]
                                  # values kept in each collectivity's personal graph, out of what
                                  # agreements removing them open to SPARQL (changing it rebuilds the index)
access_log = "/var/lib/ngsild-gateway/gateway/access.sqlite"   # the gateway's access records, indexed
                                  # into each collectivity's access graph. Default: <state_dir>/gateway/access.sqlite
pseudonym_rotations = ["2027-01-01"]   # UTC dates from which a new pseudonym key applies: devices
                                  # and entities are named by keyed pseudonyms in the shared graphs
                                  # (keys created in key_dir/pseudonyms); a date added ahead of the
                                  # records it applies to changes no indexed pseudonym

[gateway]                         # the sharing gateway (ngsild-adapter gateway); see docs/sharing-agreements.md
host = "127.0.0.1"
port = 8081
public_url = "http://gateway:8081"      # how the broker reaches the gateway (notifications)
broker_url = "http://orion:1026"        # default: [broker] url
policies = "policies"                   # folder of ODRL agreements (relative to this file)
audience = "ngsild-gateway"             # tokens must be issued for it (aud)
allowed_notification_urls = ["https://ventilation.ville.example/"]   # partners' endpoints: prefixes
                                  # compared on scheme, host, port and whole path segments
allow_private_notification_addresses = ["127.0.0.1/32"]   # optional (demo, tests): networks a partner's
                                  # endpoint may resolve to although not public (default: public only)
adapter_url = "http://127.0.0.1:8080"       # `ngsild-adapter serve`: its /sparql and /provenance, narrowed per principal
adapter_token_env = "NGSILD_ADAPTER_SERVICE_TOKEN"   # the variable holding the secret the adapter's
                                  # [provenance] service_token_env names (sent as a bearer token)
cell_publication_delay_s = 3600   # aggregated agreements: a period's cells are computed this long
                                  # after it ends (late uplinks included), then never change

[[gateway.issuer]]                # one per trusted Keycloak realm
issuer = "https://keycloak.example/realms/ville"
organization = "ville"            # realm per collectivity; omit when tokens carry an organization claim
```

Environment overrides (for containers): ``NGSILD_ADAPTER_MODELS``, ``NGSILD_ADAPTER_STATE_DIR``,
``NGSILD_ADAPTER_CONTEXTS_URL``,
``NGSILD_ADAPTER_MAX_PAYLOAD_BYTES``, ``NGSILD_ADAPTER_MAX_FUTURE_SKEW_S``,
``NGSILD_ADAPTER_PSEUDONYM_KEY`` (hex), per connection
``NGSILD_ADAPTER_<CONNECTION NAME>_{HOST,PORT,USERNAME}`` (name upper-cased, ``-`` as ``_``;
a connection's ``password_env`` and its TLS files are checked by ``listen`` when it starts, not
here: the same file serves processes that have neither),
every ``[broker]`` key as ``NGSILD_ADAPTER_BROKER_<KEY>`` (``NGSILD_ADAPTER_BROKER_URL``,
``NGSILD_ADAPTER_BROKER_MAX_IN_FLIGHT``...), ``NGSILD_ADAPTER_OUTBOX_MAX_DEPTH``, every ``[http]`` key
as ``NGSILD_ADAPTER_HTTP_<KEY>``, and every
``[provenance]`` key as ``NGSILD_ADAPTER_PROVENANCE_<KEY>``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

from adapter.exceptions import ConfigError
from adapter.httpserver import ServerLimits
from adapter.mapping.entities import DeviceRecord
from adapter.provenance.integrity.keys import default_key_directory
from adapter.sources._common import ParseLimits, normalise_eui, optional_location
from adapter.uplink import Origin

__all__ = [
    "AdapterConfig",
    "BrokerSettings",
    "Collectivity",
    "Connection",
    "GatewaySettings",
    "IssuerSettings",
    "MQTT_PORT",
    "MQTT_TLS_PORT",
    "ProvenanceSettings",
    "RegistrySettings",
    "TlsSettings",
    "load_config",
]

_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
_ENV = "NGSILD_ADAPTER_"
#: Orion-LD's limits for one batch: 1,000 entities (I#1951), a body under 1 MiB
MAX_BATCH_ENTITIES = 1000
MAX_BATCH_BYTES = 1024 * 1024


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


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> AdapterConfig:
    """Read the TOML file (or the embedded defaults when None) and apply the environment."""
    env = os.environ if env is None else env
    if path is None:
        path = Path(__file__).resolve().parent / "demo" / "config.toml"
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    base = path.parent
    adapter = _table(doc, "adapter", path)
    unknown = set(doc) - {"adapter", "collectivity", "connection", "device", "broker", "outbox", "provenance", "gateway", "http",
                             "registry"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")

    contexts_url = env.get(_ENV + "CONTEXTS_URL") or adapter.get("contexts_url")
    models = env.get(_ENV + "MODELS") or adapter.get("models", "models")
    state_dir = env.get(_ENV + "STATE_DIR") or adapter.get("state_dir", "var")
    limits = ParseLimits(
        max_payload_bytes=int(env.get(_ENV + "MAX_PAYLOAD_BYTES") or adapter.get("max_payload_bytes", 256)),
        max_future_skew=timedelta(
            seconds=float(env.get(_ENV + "MAX_FUTURE_SKEW_S") or adapter.get("max_future_skew_s", 600))
        ),
    )
    collectivities = {c.tenant: c for c in (_collectivity(t, path) for t in doc.get("collectivity", []))}
    if not collectivities:
        raise ConfigError(f"{path}: at least one [[collectivity]] is needed")
    connections = tuple(_connection(t, path, collectivities, env) for t in doc.get("connection", []))
    names = [c.name for c in connections]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: connection names must be unique")
    devices = {d.dev_eui: d for d in (_device(t, path, collectivities) for t in doc.get("device", []))}
    registries = _registries(doc.get("registry", []), base, path, connections, env)
    key_hex = env.get(_ENV + "PSEUDONYM_KEY")
    try:
        key = bytes.fromhex(key_hex) if key_hex else None
    except ValueError as exc:
        raise ConfigError(f"{_ENV}PSEUDONYM_KEY must be hex") from exc
    outbox = _table(doc, "outbox", path)
    if set(outbox) - {"max_depth"}:
        raise ConfigError(f"{path}: unknown key(s) in [outbox]: {', '.join(sorted(set(outbox) - {'max_depth'}))}")
    depth = env.get(_ENV + "OUTBOX_MAX_DEPTH") or outbox.get("max_depth", 100_000)
    max_depth = _number(depth, int, "outbox max_depth", path)
    if max_depth < 1:
        raise ConfigError(f"{path}: outbox max_depth must be at least 1")
    return AdapterConfig(
        path=path,
        models_dir=(base / models).resolve(),
        state_dir=(base / state_dir).resolve(),
        limits=limits,
        collectivities=collectivities,
        connections=connections,
        devices=devices,
        pseudonym_key=key,
        broker=_broker(_table(doc, "broker", path), path, env),
        outbox_max_depth=max_depth,
        contexts_url=contexts_url,
        provenance=_provenance(_table(doc, "provenance", path), base, path, env),
        gateway=_gateway(_table(doc, "gateway", path), base, path, env, collectivities),
        http=_http(_table(doc, "http", path), path, env),
        registries=registries,
    )


def _http(t: Mapping[str, Any], path: Path, env: Mapping[str, str]) -> ServerLimits:
    """The ``[http]`` table: ``ServerLimits`` of the adapter's HTTP servers."""
    kinds: dict[str, type[int | float]] = {
        "header_timeout_s": float, "body_timeout_s": float, "keepalive_timeout_s": float,
        "max_line_bytes": int, "max_field_bytes": int, "max_headers": int, "max_body_bytes": int,
    }
    unknown = set(t) - set(kinds)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in [http]: {', '.join(sorted(unknown))}")
    found = {k: env.get(f"{_ENV}HTTP_{k.upper()}") or t.get(k) for k in kinds}
    numbers = {k: _number(v, kinds[k], f"http {k}", path) for k, v in found.items() if v is not None}
    try:
        return ServerLimits(**numbers)
    except ValueError as exc:
        raise ConfigError(f"{path}: [http]: {exc}") from exc


def _table(doc: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: [{key}] must be a table")
    return value


def _number(value: Any, kind: type[int | float], what: str, path: Path) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"{path}: {what} must be a number")
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        expected = "an integer" if kind is int else "a number"
        raise ConfigError(f"{path}: {what} must be {expected}, not {value!r}") from exc


def _broker(t: Mapping[str, Any], path: Path, env: Mapping[str, str]) -> BrokerSettings:
    kinds: dict[str, type[int | float]] = {
        "batch_max_entities": int, "batch_max_bytes": int, "batch_delay_s": float, "max_in_flight": int,
        "retry_initial_s": float, "retry_max_s": float, "request_timeout_s": float,
    }
    unknown = set(t) - {"url", "temporal_url", "token_env", *kinds}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in [broker]: {', '.join(sorted(unknown))}")

    def value(key: str) -> Any:
        return env.get(f"{_ENV}BROKER_{key.upper()}") or t.get(key)

    numbers = {k: _number(value(k), kind, f"broker {k}", path) for k, kind in kinds.items() if value(k) is not None}
    url, temporal_url = value("url"), value("temporal_url")
    for key, given in (("url", url), ("temporal_url", temporal_url)):
        if given is not None and (not isinstance(given, str) or not re.match(r"^https?://[^/\s]+", given)):
            raise ConfigError(f"{path}: broker {key} must be an http:// or https:// URL, not {given!r}")
    token_env = value("token_env")
    settings = BrokerSettings(
        url=url, temporal_url=temporal_url, token_env=token_env, token=env.get(token_env) if token_env else None, **numbers
    )
    if not 1 <= settings.batch_max_entities <= MAX_BATCH_ENTITIES:
        raise ConfigError(f"{path}: broker batch_max_entities must be 1 to {MAX_BATCH_ENTITIES}")
    if not 1024 <= settings.batch_max_bytes <= MAX_BATCH_BYTES:
        raise ConfigError(f"{path}: broker batch_max_bytes must be 1024 to {MAX_BATCH_BYTES}")
    if settings.max_in_flight < 1:
        raise ConfigError(f"{path}: broker max_in_flight must be at least 1")
    if settings.batch_delay_s < 0 or settings.request_timeout_s <= 0:
        raise ConfigError(f"{path}: broker batch_delay_s must be 0 or more and request_timeout_s more than 0")
    if not 0 < settings.retry_initial_s <= settings.retry_max_s:
        raise ConfigError(f"{path}: broker retry delays need 0 < retry_initial_s <= retry_max_s")
    return settings


def _pseudonym_rotations(from_env: str | None, listed: Any, path: Path) -> tuple[date, ...]:
    """``pseudonym_rotations``: TOML dates or ``YYYY-MM-DD`` strings (the variable: comma-separated)."""
    items: Any = [part.strip() for part in from_env.split(",") if part.strip()] if from_env is not None else listed
    if not isinstance(items, list):
        raise ConfigError(f"{path}: provenance pseudonym_rotations must be a list of dates (YYYY-MM-DD)")
    found = set()
    for item in items:
        if isinstance(item, str):
            try:
                item = date.fromisoformat(item)
            except ValueError:
                pass
        if not isinstance(item, date) or isinstance(item, datetime):
            raise ConfigError(f"{path}: provenance pseudonym_rotations: {item!r} is not a date (YYYY-MM-DD)")
        found.add(item)
    return tuple(sorted(found))


def _provenance(t: Mapping[str, Any], base: Path, path: Path, env: Mapping[str, str]) -> ProvenanceSettings:
    kinds: dict[str, type[int | float]] = {
        "payload_retention_days": float, "checkpoint_interval_s": float, "index_batch": int,
        "query_timeout_s": float, "query_max_results": int,
    }
    texts = ("key_dir", "log_origin", "store", "sparql_query_url", "sparql_update_url", "sparql_store_url", "index_in",
             "access_log", "service_token_env")
    unknown = set(t) - {*kinds, *texts, "open_to_network", "personal_attributes", "pseudonym_rotations"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in [provenance]: {', '.join(sorted(unknown))}")
    open_to_network = t.get("open_to_network", False)
    from_env = env.get(f"{_ENV}PROVENANCE_OPEN_TO_NETWORK")
    if from_env is not None:
        open_to_network = {"true": True, "false": False}.get(from_env.strip().lower(), from_env)
    if not isinstance(open_to_network, bool):
        raise ConfigError(f"{path}: provenance open_to_network must be true or false")
    personal = t.get("personal_attributes", sorted(DEFAULT_PERSONAL_ATTRIBUTES))
    if not isinstance(personal, list) or not all(isinstance(n, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)
                                                  for n in personal):
        raise ConfigError(f"{path}: provenance personal_attributes must be a list of attribute names")
    rotations = _pseudonym_rotations(env.get(f"{_ENV}PROVENANCE_PSEUDONYM_ROTATIONS"),
                                     t.get("pseudonym_rotations", []), path)

    def value(key: str) -> Any:
        return env.get(f"{_ENV}PROVENANCE_{key.upper()}") or t.get(key)

    numbers = {k: _number(value(k), kind, f"provenance {k}", path) for k, kind in kinds.items() if value(k) is not None}
    strings = {k: value(k) for k in texts if value(k) is not None}
    for key, text in strings.items():
        if not isinstance(text, str) or not text:
            raise ConfigError(f"{path}: provenance {key} must be a non-empty string")
    key_dir = strings.pop("key_dir", None)
    access_log = strings.pop("access_log", None)
    if access_log is not None:
        strings["access_log"] = (base / access_log).resolve()
    token_env = strings.get("service_token_env")
    token = env.get(token_env) if token_env else None
    if open_to_network and not token_env:
        raise ConfigError(f"{path}: provenance open_to_network = true needs service_token_env (the secret every "
                          "caller of /sparql, /provenance and /metrics must send)")
    settings = ProvenanceSettings(**numbers, **strings, open_to_network=open_to_network,
                                  personal_attributes=frozenset(personal), service_token=token or None,
                                  pseudonym_rotations=rotations)
    if key_dir is not None:
        settings = replace(settings, key_dir=(base / key_dir).resolve())
    if settings.index_in not in ("listen", "serve"):
        raise ConfigError(f"{path}: provenance index_in must be 'listen' or 'serve', not {settings.index_in!r}")
    if settings.store not in ("embedded", "sparql"):
        raise ConfigError(f"{path}: provenance store must be 'embedded' or 'sparql', not {settings.store!r}")
    if settings.store == "sparql" and not (settings.sparql_query_url and settings.sparql_update_url):
        raise ConfigError(f"{path}: provenance store 'sparql' needs sparql_query_url and sparql_update_url")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.:/_-]*", settings.log_origin):
        raise ConfigError(f"{path}: provenance log_origin {settings.log_origin!r} must be a host name and path")
    if settings.payload_retention_days < 0 or settings.checkpoint_interval_s <= 0 or settings.index_batch < 1:
        raise ConfigError(f"{path}: provenance payload_retention_days must be >= 0, checkpoint_interval_s > 0, index_batch >= 1")
    if settings.query_timeout_s <= 0 or settings.query_max_results < 1:
        raise ConfigError(f"{path}: provenance query_timeout_s must be > 0 and query_max_results >= 1")
    return settings


def _gateway(
    t: Mapping[str, Any], base: Path, path: Path, env: Mapping[str, str], collectivities: Mapping[str, Collectivity]
) -> GatewaySettings:
    keys = {"host", "port", "public_url", "broker_url", "policies", "audience", "allowed_notification_urls", "issuer",
            "adapter_url", "adapter_token_env", "allow_private_notification_addresses", "cell_publication_delay_s"}
    unknown = set(t) - keys
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in [gateway]: {', '.join(sorted(unknown))}")

    def value(key: str) -> Any:
        return env.get(f"{_ENV}GATEWAY_{key.upper()}") or t.get(key)

    issuers = []
    for entry in t.get("issuer", []):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("issuer"), str):
            raise ConfigError(f"{path}: every [[gateway.issuer]] needs an issuer URL")
        if not re.match(r"^https?://[^/\s]+/", entry["issuer"]):
            raise ConfigError(f"{path}: gateway issuer {entry['issuer']!r} is not an http(s) URL")
        organization = entry.get("organization")
        if organization is not None and organization not in collectivities:
            raise ConfigError(f"{path}: gateway issuer {entry['issuer']}: organization {organization!r} is not declared")
        issuers.append(IssuerSettings(entry["issuer"], organization, entry.get("jwks_url")))
    allowed = value("allowed_notification_urls") or []
    if isinstance(allowed, str):
        allowed = [u for u in allowed.split(",") if u]
    if not all(isinstance(u, str) and re.match(r"^https?://[^/\s]+/", u) for u in allowed):
        raise ConfigError(f"{path}: gateway allowed_notification_urls must be http(s) URL prefixes ending a host with /")
    from adapter.gateway.endpoints import EndpointRefused, parse_prefix  # here: the gateway package imports this module

    for prefix in allowed:
        try:
            parse_prefix(prefix)
        except EndpointRefused as exc:
            raise ConfigError(f"{path}: gateway allowed_notification_urls {prefix!r}: {exc}") from exc
    private = value("allow_private_notification_addresses") or []
    if isinstance(private, str):
        private = [n.strip() for n in private.split(",") if n.strip()]
    if not isinstance(private, list) or not all(isinstance(n, str) for n in private):
        raise ConfigError(f"{path}: gateway allow_private_notification_addresses must be a list of networks")
    try:
        networks = tuple(ip_network(n, strict=True) for n in private)
    except ValueError as exc:
        raise ConfigError(f"{path}: gateway allow_private_notification_addresses: {exc}") from exc
    token_env = value("adapter_token_env")
    if token_env is not None and (not isinstance(token_env, str) or not token_env):
        raise ConfigError(f"{path}: gateway adapter_token_env must be the name of a variable")
    policies = value("policies")
    return GatewaySettings(
        host=str(value("host") or "127.0.0.1"),
        port=_number(value("port") or 8081, int, "gateway port", path),
        public_url=value("public_url"),
        broker_url=value("broker_url"),
        policies_dir=(base / policies).resolve() if policies else None,
        audience=str(value("audience") or "ngsild-gateway"),
        allowed_notification_urls=tuple(allowed),
        issuers=tuple(issuers),
        adapter_url=value("adapter_url"),
        adapter_token_env=token_env,
        adapter_token=(env.get(token_env) or None) if token_env else None,
        allow_private_notification_addresses=networks,
        cell_publication_delay_s=_number(value("cell_publication_delay_s") or 3600, float,
                                         "gateway cell_publication_delay_s", path),
    )


#: a bearer token's characters (RFC 6750 b64token); long enough not to be guessed
_SECRET = re.compile(r"[A-Za-z0-9._~+/-]{32,512}=*")


def _required_secret(name: str | None, value: str | None, what: str) -> str | None:
    """The secret of the variable ``name`` for the process that uses it (at its start: one
    file serves processes with different environments): None when no variable is named,
    ``ConfigError`` when it is unset or not a strong bearer token."""
    if not name:
        return None
    if not value:
        raise ConfigError(f"{what}: the variable {name} is not set")
    if not _SECRET.fullmatch(value):
        raise ConfigError(f"{what}: the variable {name} must hold at least 32 characters of "
                          "A-Z a-z 0-9 . _ ~ + / - (a bearer token; e.g. `openssl rand -hex 32`)")
    return value


def _collectivity(t: Mapping[str, Any], path: Path) -> Collectivity:
    tenant = t.get("tenant")
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise ConfigError(
            f"{path}: collectivity tenant {tenant!r} must be 1-50 characters of a-z, 0-9, '_' or '-'"
        )
    name = t.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: collectivity {tenant} needs a name")
    return Collectivity(tenant=tenant, name=name, identifiers={str(k): str(v) for k, v in t.get("identifiers", {}).items()})


#: the keys a [[connection]] may have: a misspelt one (``ca_flie``) must not be ignored silently
_CONNECTION_KEYS = frozenset({
    "name", "collectivity", "lns", "transport", "host", "port", "username", "password_env", "application",
    "client_id", "token_env", "allow_unauthenticated", "tls", "ca_file", "cert_file", "key_file", "tls_server_name",
})
_TLS_KEYS = ("ca_file", "cert_file", "key_file", "tls_server_name")
#: a DNS name (RFC 1123 labels), what a server certificate's subjectAltName carries
_HOSTNAME = re.compile(r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                       r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?")
#: MQTT's registered ports: plaintext, and over TLS
MQTT_PORT, MQTT_TLS_PORT = 1883, 8883


def _connection(
    t: Mapping[str, Any], path: Path, collectivities: Mapping[str, Collectivity], env: Mapping[str, str]
) -> Connection:
    name = t.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: every [[connection]] needs a name")
    where = f"{path}: connection {name}"
    if "tls_insecure" in t:
        raise ConfigError(
            f"{where}: tls_insecure is not supported (it would send the credentials to anyone on the path); "
            "trust a private CA or a self-signed server certificate with ca_file, and give tls_server_name "
            "when the certificate names another host"
        )
    unknown = set(t) - _CONNECTION_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if not isinstance(t.get("collectivity"), str) or t["collectivity"] not in collectivities:
        raise ConfigError(f"{where}: collectivity {t.get('collectivity')!r} is not declared")
    if t.get("lns") not in ("chirpstack", "tts"):
        raise ConfigError(f"{where}: lns must be 'chirpstack' or 'tts'")
    transport = t.get("transport", "mqtt")
    if transport not in ("mqtt", "webhook"):
        raise ConfigError(f"{where}: transport must be 'mqtt' or 'webhook'")
    prefix = _ENV + re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_"
    password_env = t.get("password_env")
    if password_env is not None and (not isinstance(password_env, str) or not password_env):
        raise ConfigError(f"{where}: password_env must be the name of an environment variable")
    host = env.get(prefix + "HOST") or t.get("host", "127.0.0.1")
    username = env.get(prefix + "USERNAME") or t.get("username")
    for key, text in (("host", host), ("username", username), ("client_id", t.get("client_id")),
                      ("application", t.get("application"))):
        if text is not None and (not isinstance(text, str) or not text):
            raise ConfigError(f"{where}: {key} must be a non-empty string, not {text!r}")
    if password_env and not username:
        # MQTT sends no password without a user name: it would be dropped without a word
        raise ConfigError(f"{where}: password_env needs a username (TTS: the application id, e.g. app@ttn)")
    tls = _tls(t, where, path.parent, transport)
    default_port = MQTT_TLS_PORT if tls is not None else MQTT_PORT
    port = _number(env.get(prefix + "PORT") or t.get("port", default_port), int, f"connection {name} port", path)
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where}: port must be 1 to 65535, not {port}")
    token_env = t.get("token_env")
    allow_unauthenticated = t.get("allow_unauthenticated", False) is True
    if transport == "webhook" and not token_env and not allow_unauthenticated:
        raise ConfigError(
            f"{where}: a webhook needs token_env (the variable holding the bearer token the network "
            "server sends) or, for a local demo only, allow_unauthenticated = true"
        )
    return Connection(
        name=name,
        collectivity=t["collectivity"],
        lns=t["lns"],
        transport=transport,
        host=host,
        port=port,
        username=username,
        password=(env.get(password_env) or None) if password_env else None,
        password_env=password_env,
        tls=tls,
        application=t.get("application"),
        client_id=t.get("client_id"),
        webhook_token_env=token_env,
        webhook_token=env.get(token_env) if token_env else None,
        allow_unauthenticated=allow_unauthenticated,
    )


def _tls(t: Mapping[str, Any], where: str, base: Path, transport: str) -> TlsSettings | None:
    """A connection's TLS keys, checked for shape only (the files are read by ``listen``)."""
    tls = t.get("tls", False)
    if not isinstance(tls, bool):
        raise ConfigError(f"{where}: tls must be true or false, not {tls!r}")
    given = [k for k in _TLS_KEYS if k in t]
    if not tls:
        if given:
            # the connection would be plaintext although the file asks for certificates
            raise ConfigError(f"{where}: {', '.join(given)} given but tls is not true")
        return None
    if transport != "mqtt":
        raise ConfigError(f"{where}: tls applies to MQTT connections; a webhook's TLS is its reverse proxy's")
    files: dict[str, Path | None] = {}
    for key in ("ca_file", "cert_file", "key_file"):
        value = t.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{where}: {key} must be a file path")
        files[key] = (base / value).resolve() if value else None
    if (files["cert_file"] is None) != (files["key_file"] is None):
        raise ConfigError(f"{where}: cert_file and key_file go together (the client certificate and its key)")
    server_name = t.get("tls_server_name")
    if server_name is not None and (not isinstance(server_name, str) or not _HOSTNAME.fullmatch(server_name)):
        raise ConfigError(f"{where}: tls_server_name must be a host name, not {server_name!r}")
    return TlsSettings(
        ca_file=files["ca_file"], cert_file=files["cert_file"], key_file=files["key_file"], server_name=server_name
    )


def _device(t: Mapping[str, Any], path: Path, collectivities: Mapping[str, Collectivity]) -> DeviceRecord:
    try:
        eui = normalise_eui(str(t.get("dev_eui", "")))
    except Exception as exc:
        raise ConfigError(f"{path}: [[device]] dev_eui {t.get('dev_eui')!r} is not a 16-digit hex EUI") from exc
    location = None
    if "location" in t:
        location = optional_location(t["location"])
        if location is None:
            raise ConfigError(f"{path}: device {eui} location needs latitude and longitude in range")
    tenant = t.get("collectivity")
    if tenant is not None and tenant not in collectivities:
        raise ConfigError(f"{path}: device {eui} collectivity {tenant!r} is not declared")
    return DeviceRecord(
        dev_eui=eui,
        name=t.get("name"),
        location=location,
        attributes=dict(t.get("attributes", {})),
        tenant=tenant,
    )


#: application ids: ChirpStack v4 names them by UUID; TTS ids are 3-36 of a-z, 0-9 and inner dashes
_APPLICATION_ID = {
    "chirpstack": re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    "tts": re.compile(r"[a-z0-9](?:-?[a-z0-9]){2,35}"),
}
_REGISTRY_KEYS = {"connection", "url", "applications", "token_env", "ca_file", "interval_s", "timeout_s", "max_devices"}


def _registries(
    entries: Any, base: Path, path: Path, connections: tuple[Connection, ...], env: Mapping[str, str]
) -> tuple[RegistrySettings, ...]:
    """The ``[[registry]]`` entries: one per connection at most, each bound to its connection's
    network server kind and collectivity."""
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: registry must be an array of tables ([[registry]])")
    by_name = {c.name: c for c in connections}
    found: list[RegistrySettings] = []
    for t in entries:
        if not isinstance(t, Mapping):
            raise ConfigError(f"{path}: every [[registry]] must be a table")
        name = t.get("connection")
        if name not in by_name:
            raise ConfigError(f"{path}: [[registry]] connection {name!r} is not a declared [[connection]]")
        where = f"{path}: registry of connection {name}"
        unknown = set(t) - _REGISTRY_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if any(r.connection == name for r in found):
            raise ConfigError(f"{where}: one [[registry]] per connection")
        connection = by_name[name]
        url = t.get("url")
        if not isinstance(url, str) or not re.fullmatch(r"https?://[^/\s?#]+/?", url):
            raise ConfigError(f"{where}: url must be http(s)://host[:port], not {url!r}")
        applications = t.get("applications", [connection.application] if connection.application else None)
        pattern = _APPLICATION_ID[connection.lns]
        if (not isinstance(applications, list) or not applications
                or not all(isinstance(a, str) and pattern.fullmatch(a) for a in applications)):
            kind = "UUIDs" if connection.lns == "chirpstack" else "ids (3-36 of a-z, 0-9, -)"
            raise ConfigError(f"{where}: applications must be a non-empty list of {connection.lns} application {kind}")
        if len(set(applications)) != len(applications):
            raise ConfigError(f"{where}: applications are listed twice")
        token_env = t.get("token_env")
        if not isinstance(token_env, str) or not token_env:
            raise ConfigError(f"{where}: token_env must name the variable holding the API token (or key)")
        ca_file = t.get("ca_file")
        if ca_file is not None and (not isinstance(ca_file, str) or not ca_file):
            raise ConfigError(f"{where}: ca_file must be a file name")
        settings = RegistrySettings(
            connection=name, lns=connection.lns, collectivity=connection.collectivity, url=url.rstrip("/"),
            applications=tuple(applications), token_env=token_env, token=env.get(token_env) or None,
            ca_file=(base / ca_file).resolve() if ca_file else None,
            interval_s=_number(t.get("interval_s", 3600), float, "registry interval_s", path),
            timeout_s=_number(t.get("timeout_s", 30), float, "registry timeout_s", path),
            max_devices=_number(t.get("max_devices", 10_000), int, "registry max_devices", path),
        )
        if not (settings.interval_s >= 10 and 0 < settings.timeout_s <= 600 and 1 <= settings.max_devices <= 1_000_000):
            raise ConfigError(f"{where}: needs interval_s >= 10, 0 < timeout_s <= 600, 1 <= max_devices <= 1000000")
        found.append(settings)
    return tuple(found)
