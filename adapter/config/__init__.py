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

from ._loader import load_config
from ._models import (
    DEFAULT_PERSONAL_ATTRIBUTES,
    MAX_BATCH_BYTES,
    MAX_BATCH_ENTITIES,
    MQTT_PORT,
    MQTT_TLS_PORT,
    AdapterConfig,
    BrokerSettings,
    Collectivity,
    Connection,
    GatewaySettings,
    IssuerSettings,
    ProvenanceSettings,
    RegistrySettings,
    TlsSettings,
)
from ._schema import TABLES, Key, Table
from ._start import PROCESSES, StartRefused, start_problems, validate_for_start

__all__ = [
    "DEFAULT_PERSONAL_ATTRIBUTES",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ENTITIES",
    "MQTT_PORT",
    "MQTT_TLS_PORT",
    "PROCESSES",
    "TABLES",
    "AdapterConfig",
    "BrokerSettings",
    "Collectivity",
    "Connection",
    "GatewaySettings",
    "IssuerSettings",
    "Key",
    "ProvenanceSettings",
    "RegistrySettings",
    "StartRefused",
    "Table",
    "TlsSettings",
    "load_config",
    "start_problems",
    "validate_for_start",
]
