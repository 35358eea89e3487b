"""One declaration per table of the configuration file: its keys, their types, defaults,
environment overrides and meaning.

Everything that needs the list of keys reads it here: the loader's allowlists (an unknown
key is refused, with the nearest declared names as suggestions), and the reference page
``docs/configuration.md``, which ``python -m adapter.config.reference`` writes and a test
keeps equal to these declarations. Adding a key to a reader without declaring it here makes
the loader refuse it, so the two cannot drift apart.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.exceptions import ConfigError

from ._common import ENV_PREFIX

__all__ = [
    "ENVIRONMENT_ONLY",
    "SECTIONS",
    "TABLES",
    "Key",
    "Table",
    "refuse_unknown",
    "refuse_unknown_sections",
    "suggestions",
    "table_named",
]


@dataclass(frozen=True, slots=True)
class Key:
    """One key of a table: what the reference page prints about it."""

    name: str
    kind: str  # as the reader accepts it: "string", "integer", "number", "boolean", "path", "list of URLs"...
    default: str  # shown as is; "required" when the table is unusable without it, "-" when absent means off
    meaning: str
    env: bool = False  # overridable by the table's variable prefix + the key upper-cased


@dataclass(frozen=True, slots=True)
class Table:
    """A table of the file (``[broker]``) or an array of tables (``[[connection]]``)."""

    name: str  # as written between the brackets: "broker", "gateway.issuer"
    array: bool
    summary: str
    keys: tuple[Key, ...]
    #: the variables' prefix after ``NGSILD_ADAPTER_`` ("BROKER_"); None: no key has one
    env_prefix: str | None = None

    @property
    def header(self) -> str:
        return f"[[{self.name}]]" if self.array else f"[{self.name}]"

    @property
    def allowed(self) -> frozenset[str]:
        return frozenset(k.name for k in self.keys)

    def env_name(self, key: Key) -> str | None:
        """The variable overriding ``key``, or None when only the file sets it."""
        if not key.env or self.env_prefix is None:
            return None
        return f"{ENV_PREFIX}{self.env_prefix}{key.name.upper()}"


def _k(name: str, kind: str, default: str, meaning: str, env: bool = False) -> Key:
    return Key(name, kind, default, meaning, env)


TABLES: tuple[Table, ...] = (
    Table(
        "adapter",
        False,
        "Where the adapter finds its device profiles and keeps its state; input limits.",
        (
            _k("models", "path", '"models"', "Folder of device profiles (models/*.yaml), relative to the file.", True),
            _k(
                "state_dir",
                "path",
                '"var"',
                "Folder of the SQLite files: pipeline state, outbox, dead letters, registry imports.",
                True,
            ),
            _k(
                "contexts_url",
                "URL",
                "-",
                "Where the broker fetches the adapter's served @contexts (entities name "
                "these copies); absent: entities name the contexts' public URLs.",
                True,
            ),
            _k(
                "max_payload_bytes",
                "integer",
                "256",
                "Largest LoRaWAN payload accepted; a longer one is a dead letter.",
                True,
            ),
            _k(
                "max_future_skew_s", "number", "600", "An uplink time further in the future than this is refused.", True
            ),
        ),
        env_prefix="",
    ),
    Table(
        "collectivity",
        True,
        "One public body: its NGSI-LD tenant. At least one is required.",
        (
            _k("tenant", "string", "required", "NGSI-LD tenant (NGSILD-Tenant header): 1-50 of a-z, 0-9, _ and -."),
            _k("name", "string", "required", "Its name, shown in provenance records."),
            _k("identifiers", "table of strings", "{}", 'Official identifiers, e.g. { siren = "200046977" }.'),
        ),
    ),
    Table(
        "connection",
        True,
        "One network-server integration: MQTT or webhook. Variables: "
        "NGSILD_ADAPTER_<NAME>_HOST, _PORT, _USERNAME (the name upper-cased, - as _).",
        (
            _k("name", "string", "required", "Unique name; the webhook path is /webhooks/<name>."),
            _k("collectivity", "string", "required", "The tenant its events belong to (a declared [[collectivity]])."),
            _k(
                "lns",
                '"chirpstack" or "tts"',
                "required",
                "The network server's format: ChirpStack v4 or The Things Stack v3.",
            ),
            _k("transport", '"mqtt" or "webhook"', '"mqtt"', "How events arrive."),
            _k("host", "string", '"127.0.0.1"', "MQTT: the broker's host.", True),
            _k("port", "integer", "1883 (8883 with tls)", "MQTT: the broker's port, 1 to 65535.", True),
            _k("username", "string", "-", "MQTT: the user name (TTS: the application id, e.g. app@ttn).", True),
            _k(
                "password_env",
                "variable name",
                "-",
                "MQTT: the variable holding the password or API key; needs username; checked at start.",
            ),
            _k("application", "string", "-", "Only this LNS application's events (also the registry's default)."),
            _k("client_id", "string", "-", "MQTT client id (persistent session); default: derived from the name."),
            _k(
                "token_env",
                "variable name",
                "-",
                "Webhook: the variable holding the bearer token the network server sends; checked at start.",
            ),
            _k("allow_unauthenticated", "boolean", "false", "Webhook without a token: a local demo only."),
            _k("tls", "boolean", "false", "MQTT over TLS 1.2+, server certificate and name verified."),
            _k("ca_file", "path", "- (the system's CAs)", "tls: the CA(s) to trust, relative to the file."),
            _k("cert_file", "path", "-", "tls: client certificate (chain); with key_file."),
            _k("key_file", "path", "-", "tls: the client certificate's unencrypted key; with cert_file."),
            _k("tls_server_name", "host name", "- (host)", "tls: the name the server certificate must carry."),
        ),
        env_prefix="<CONNECTION NAME>_",
    ),
    Table(
        "device",
        True,
        "A device given by hand; wins over registry imports.",
        (
            _k("dev_eui", "string", "required", "The 16-digit hex DevEUI."),
            _k("collectivity", "string", "-", "Its collectivity: its events on another's connection are dead letters."),
            _k("name", "string", "-", "Its name on the entities."),
            _k("location", "table", "-", "{ latitude, longitude, altitude?, source? }: where it is installed."),
            _k("attributes", "table", "{}", "Static attributes added to its entities (e.g. refPointOfInterest)."),
        ),
    ),
    Table(
        "registry",
        True,
        "A network server's device registry to import (names, tags, locations).",
        (
            _k(
                "connection",
                "string",
                "required",
                "The declared [[connection]] whose network server and collectivity it uses.",
            ),
            _k("url", "URL", "required", "The API's root, http(s)://host[:port]."),
            _k(
                "applications",
                "list of strings",
                "[connection's application]",
                "ChirpStack application UUIDs or TTS application ids.",
            ),
            _k(
                "token_env",
                "variable name",
                "required",
                "The variable holding the API token (TTS: API key); checked at start.",
            ),
            _k("ca_file", "path", "-", "https: the CA to trust, relative to the file."),
            _k(
                "interval_s",
                "number",
                "3600",
                "Imported again this often (at least 10); a failure keeps the last import.",
            ),
            _k("timeout_s", "number", "30", "One request (more than 0, at most 600)."),
            _k("max_devices", "integer", "10000", "Per application; a longer list is refused."),
        ),
    ),
    Table(
        "broker",
        False,
        "The NGSI-LD broker the entities are written to.",
        (
            _k("url", "URL", "- (entities wait in the outbox)", "The broker's root, without /ngsi-ld/v1.", True),
            _k(
                "temporal_url",
                "URL",
                "- (url)",
                "Where temporal queries go (Mintaka beside Orion-LD); writes go to url.",
                True,
            ),
            _k(
                "token_env",
                "variable name",
                "-",
                "The variable holding a bearer token for the broker; checked at start.",
                True,
            ),
            _k(
                "batch_max_entities",
                "integer",
                "1000",
                "Entities per batch upsert, 1 to 1000 (Orion-LD's limit).",
                True,
            ),
            _k("batch_max_bytes", "integer", "1048576", "Batches stay strictly under this, 1024 to 1048576.", True),
            _k(
                "batch_delay_s",
                "number",
                "0.05",
                "A partial batch leaves once its oldest entity waited this long.",
                True,
            ),
            _k("max_in_flight", "integer", "4", "Batches sent at once (never the same entity twice).", True),
            _k("retry_initial_s", "number", "0.5", "First retry delay, doubled up to retry_max_s (with jitter).", True),
            _k("retry_max_s", "number", "60", "The retry delay's cap.", True),
            _k("request_timeout_s", "number", "30", "One batch request, connection included.", True),
        ),
        env_prefix="BROKER_",
    ),
    Table(
        "outbox",
        False,
        "The durable queue between ingest and the broker.",
        (_k("max_depth", "integer", "100000", "Entities waiting at most; beyond, ingest is pushed back.", True),),
        env_prefix="OUTBOX_",
    ),
    Table(
        "http",
        False,
        "Limits of the adapter's HTTP servers (listen --http-port, serve, gateway).",
        (
            _k("header_timeout_s", "number", "10", "A request head must arrive within this (408).", True),
            _k("body_timeout_s", "number", "30", "A body must arrive within this once its head did (408).", True),
            _k("keepalive_timeout_s", "number", "15", "An idle connection is closed after this.", True),
            _k("max_line_bytes", "integer", "8190", "The request line at most (400).", True),
            _k("max_field_bytes", "integer", "8190", "Each header at most (400).", True),
            _k("max_headers", "integer", "100", "Headers at most (400).", True),
            _k("max_body_bytes", "integer", "1048576", "Bodies at most (413).", True),
        ),
        env_prefix="HTTP_",
    ),
    Table(
        "provenance",
        False,
        "Integrity logs, the RDF index and the data paths' secret (docs/provenance.md).",
        (
            _k(
                "key_dir",
                "path",
                "$XDG_DATA_HOME/ngsild-adapter/keys",
                "One log signing key per collectivity, created on first run; refused inside a Git work tree.",
                True,
            ),
            _k(
                "log_origin",
                "string",
                '"ngsild-adapter.localhost"',
                "Logs are named <log_origin>/<tenant> in their checkpoints.",
                True,
            ),
            _k(
                "payload_retention_days",
                "number",
                "30",
                "Raw payloads kept this long (0: never kept); digests stay.",
                True,
            ),
            _k("checkpoint_interval_s", "number", "10", "A signed tree head per grown log at this interval.", True),
            _k(
                "store",
                '"embedded" or "sparql"',
                '"embedded"',
                "The RDF index: pyoxigraph in <state_dir>/rdf, or a SPARQL 1.1 store.",
                True,
            ),
            _k("sparql_query_url", "URL", "-", 'store = "sparql": its query endpoint (required then).', True),
            _k("sparql_update_url", "URL", "-", 'store = "sparql": its update endpoint (required then).', True),
            _k(
                "sparql_store_url",
                "URL",
                "-",
                'store = "sparql": its Graph Store Protocol endpoint (bulk writes).',
                True,
            ),
            _k("index_batch", "integer", "2000", "Records indexed per round, off the ingestion path.", True),
            _k("query_timeout_s", "number", "10", "/sparql: time limit of one query.", True),
            _k("query_max_results", "integer", "10000", "/sparql: results at most.", True),
            _k(
                "service_token_env",
                "variable name",
                "-",
                "The variable holding the secret /sparql, /provenance and /metrics "
                "require (32+ characters); checked at start.",
                True,
            ),
            _k(
                "open_to_network",
                "boolean",
                "false",
                "Those paths answer other machines (needs service_token_env).",
                True,
            ),
            _k("index_in", '"listen" or "serve"', '"listen"', "Which process keeps the RDF index.", True),
            _k(
                "personal_attributes",
                "list of attribute names",
                "name, alternateName, description, owner, address, location, refDevice",
                "Values kept in each collectivity's personal graph.",
            ),
            _k(
                "access_log",
                "path",
                "<state_dir>/gateway/access.sqlite",
                "The gateway's access records, indexed into the access graphs.",
                True,
            ),
            _k(
                "pseudonym_rotations",
                "list of dates",
                "[]",
                "UTC dates from which a new pseudonym key applies (the variable: comma-separated).",
                True,
            ),
        ),
        env_prefix="PROVENANCE_",
    ),
    Table(
        "gateway",
        False,
        "The sharing gateway (ngsild-adapter gateway; docs/sharing-agreements.md).",
        (
            _k("host", "string", '"127.0.0.1"', "Address to listen on.", True),
            _k("port", "integer", "8081", "Port to listen on.", True),
            _k("public_url", "URL", "-", "How the broker reaches the gateway (notifications).", True),
            _k("broker_url", "URL", "- ([broker] url)", "The broker the gateway reads.", True),
            _k("policies", "path", "-", "Folder of ODRL agreements, relative to the file.", True),
            _k("audience", "string", '"ngsild-gateway"', "Tokens must be issued for it (aud).", True),
            _k(
                "allowed_notification_urls",
                "list of URL prefixes",
                "[]",
                "Partners' notification endpoints (the variable: comma-separated).",
                True,
            ),
            _k(
                "allow_private_notification_addresses",
                "list of networks",
                "[] (public only)",
                "Networks an endpoint may resolve to although not public (demo, tests).",
                True,
            ),
            _k(
                "adapter_url",
                "URL",
                "-",
                "ngsild-adapter serve: its /sparql and /provenance, narrowed per principal.",
                True,
            ),
            _k(
                "adapter_token_env",
                "variable name",
                "-",
                "The variable holding the secret sent to adapter_url; checked at start.",
                True,
            ),
            _k(
                "cell_publication_delay_s",
                "number",
                "3600",
                "Aggregated agreements: a period's cells are computed this long after it ends.",
                True,
            ),
            _k("issuer", "array of tables", "[]", "The trusted token issuers: [[gateway.issuer]]."),
        ),
        env_prefix="GATEWAY_",
    ),
    Table(
        "gateway.issuer",
        True,
        "A trusted token issuer (a Keycloak realm) of the gateway.",
        (
            _k("issuer", "URL", "required", "The issuer (iss) URL, http(s)."),
            _k(
                "organization",
                "string",
                "- (the token's organization claim)",
                "The collectivity this realm's tokens belong to.",
            ),
            _k("jwks_url", "URL", "- (discovered)", "Its JSON Web Key Set, when not at the discovered location."),
        ),
    ),
)

#: the top-level tables of the file ([[gateway.issuer]] lives inside [gateway])
SECTIONS = frozenset(t.name for t in TABLES if "." not in t.name)

#: variables with no key in the file
ENVIRONMENT_ONLY: tuple[tuple[str, str], ...] = (
    ("NGSILD_ADAPTER_CONFIG", "The configuration file of every command (--config)."),
    ("NGSILD_ADAPTER_LOG_LEVEL", "Log level of every command (--log-level)."),
    ("NGSILD_ADAPTER_PSEUDONYM_KEY", "Hex key of the privacy rules' pseudonyms (never in the file)."),
)


def table_named(name: str) -> Table:
    """The declaration of ``name`` ("broker", "gateway.issuer")."""
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(name)


def suggestions(unknown: str, allowed: frozenset[str]) -> list[str]:
    """The declared names nearest to a misspelt one (difflib's ratio, the usual 0.6 cut-off)."""
    return difflib.get_close_matches(unknown, sorted(allowed), n=2)


def _described(unknown: list[str], allowed: frozenset[str]) -> str:
    parts = []
    for key in unknown:
        near = suggestions(key, allowed)
        parts.append(f"{key} (did you mean {' or '.join(repr(n) for n in near)}?)" if near else key)
    return ", ".join(parts)


def refuse_unknown(given: Mapping[str, Any], table: str, path: Path, entry: str | None = None) -> None:
    """``ConfigError`` naming the file, the table and every key of ``given`` that ``table`` does
    not declare, each with its near names: a misspelt key is never ignored silently.

    ``entry`` names one entry of an array of tables ("connection ville-lns")."""
    declared = table_named(table)
    unknown = sorted(str(k) for k in given if k not in declared.allowed)
    if not unknown:
        return
    anchor = f"see docs/configuration.md, {declared.header}"
    if entry is None:
        raise ConfigError(
            f"{path}: unknown key(s) in {declared.header}: {_described(unknown, declared.allowed)}; {anchor}"
        )
    raise ConfigError(
        f"{path}: {entry} ({declared.header}): unknown key(s) {_described(unknown, declared.allowed)}; {anchor}"
    )


def refuse_unknown_sections(doc: Mapping[str, Any], path: Path) -> None:
    """``ConfigError`` for a top-level table the file format does not have ([adaptor])."""
    unknown = sorted(str(k) for k in doc if k not in SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {_described(unknown, SECTIONS)}; see docs/configuration.md")
