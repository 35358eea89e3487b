"""The sharing gateway as a running service: assembled from the configuration.

``ngsild-adapter gateway`` runs ``serve_gateway``; tests and the demo use ``open_gateway`` to
get the application with its resources (token validator, agreements, access log,
subscriptions), and close them after.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from adapter.access.cells import CellStore
from adapter.access.model import AccessRequest, Decision, Principal, SparqlDataset
from adapter.access.odrl import Catalogue
from adapter.access.policies import PolicySet
from adapter.access.tokens import TokenValidator, TrustedIssuer
from adapter.config import AdapterConfig
from adapter.exceptions import AdapterError, ConfigError
from adapter.access.log import AccessLog
from adapter.gateway.app import GatewayContext, create_gateway_app
from adapter.gateway.endpoints import EndpointPolicy
from adapter.gateway.subscriptions import SubscriptionStore
from adapter.httpserver import serve_forever
from adapter.mapping.profile import load_profiles
from adapter.provenance.runtime import entity_contexts

__all__ = ["ReloadingPolicies", "load_policies", "open_gateway", "serve_gateway"]

log = logging.getLogger(__name__)


def load_policies(config: AdapterConfig, folder: Path | None = None) -> PolicySet:
    """The agreements of ``folder`` (default: ``[gateway] policies``), checked against the
    configured collectivities and what the device profiles make."""
    folder = folder or config.gateway.policies_dir
    if folder is None:
        raise ConfigError("no agreements folder: set [gateway] policies")
    catalogue = Catalogue.from_profiles(load_profiles(config.models_dir))
    return PolicySet.load(
        folder,
        tenants=set(config.collectivities),
        catalogue=catalogue,
        personal_attributes=config.provenance.personal_attributes,
    )


class ReloadingPolicies:
    """The agreements of a folder, loaded again when its files change (``admin grant`` and
    ``admin revoke`` take effect without a restart).

    The folder is looked at no more often than every ``check_every_s``. A folder that no longer
    loads (a file broken by hand) keeps the agreements in force and logs why: a mistake must
    not open anything, nor close everything.
    """

    def __init__(
        self,
        config: AdapterConfig,
        folder: Path,
        *,
        check_every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._folder = folder
        self._check_every_s = check_every_s
        self._clock = clock
        self._signature = self._current_signature()
        self._policies = load_policies(config, folder)
        self._checked_at = clock()

    def _current_signature(self) -> tuple[tuple[str, int, int], ...]:
        files = sorted(self._folder.glob("*.jsonld"))
        return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)

    def _fresh(self) -> PolicySet:
        now = self._clock()
        if now - self._checked_at >= self._check_every_s:
            self._checked_at = now
            signature = self._current_signature()
            if signature != self._signature:
                try:
                    self._policies = load_policies(self._config, self._folder)
                    log.info("agreements reloaded from %s (%d files)", self._folder, len(signature))
                except AdapterError as exc:
                    log.error("agreements NOT reloaded, the previous ones stay in force: %s", exc)
                self._signature = signature
        return self._policies

    @property
    def tenants(self) -> frozenset[str]:
        return self._fresh().tenants

    def attributes(self, entity_type: str) -> frozenset[str]:
        return self._fresh().attributes(entity_type)

    def decide(self, principal: Principal, request: AccessRequest, *, now: datetime) -> Decision:
        return self._fresh().decide(principal, request, now=now)

    def sparql_dataset(self, principal: Principal, *, purpose: str | None = None) -> SparqlDataset:
        return self._fresh().sparql_dataset(principal, purpose=purpose)


@contextlib.asynccontextmanager
async def open_gateway(config: AdapterConfig, *, state_dir: Path | None = None) -> AsyncIterator[web.Application]:
    """The gateway application and its resources, closed on exit."""
    settings = config.gateway
    broker_url = settings.broker_url or config.broker.url
    if broker_url is None:
        raise ConfigError("the gateway needs a broker: set [gateway] broker_url or [broker] url")
    if not settings.issuers:
        raise ConfigError("the gateway trusts no token issuer: add [[gateway.issuer]] entries")
    if settings.policies_dir is None:
        raise ConfigError("no agreements folder: set [gateway] policies")
    adapter_token = settings.required_adapter_token()
    temporal_url = config.broker.temporal_url
    endpoints = EndpointPolicy.from_settings(settings, internal_urls=[broker_url, *filter(None, [temporal_url])])
    policies = ReloadingPolicies(config, settings.policies_dir)
    folder = state_dir or Path(config.state_dir) / "gateway"
    folder.mkdir(parents=True, exist_ok=True)
    access_log = AccessLog(folder / "access.sqlite", tenants=config.collectivities)
    subscriptions = SubscriptionStore(folder / "subscriptions.sqlite")
    cells = CellStore(folder / "cells.sqlite")
    try:
        async with aiohttp.ClientSession() as session:
            validator = TokenValidator(
                [
                    TrustedIssuer(
                        i.issuer, jwks_url=i.jwks_url, organization=i.organization, audience=settings.audience
                    )
                    for i in settings.issuers
                ],
                session,
            )
            context = GatewayContext(
                validator.validate,
                policies,
                broker_url,
                session,
                entity_contexts(load_profiles(config.models_dir)),
                access_log,
                subscriptions=subscriptions,
                public_url=settings.public_url,
                endpoints=endpoints,
                adapter_url=settings.adapter_url,
                adapter_token=adapter_token,
                cells=cells,
                cell_publication_delay=timedelta(seconds=settings.cell_publication_delay_s),
                contexts_url=config.contexts_url,
                temporal_url=temporal_url,
            )
            yield create_gateway_app(context)
    finally:
        cells.close()
        subscriptions.close()
        access_log.close()


async def serve_gateway(config: AdapterConfig) -> None:
    """Serve the gateway on ``[gateway] host:port`` until cancelled, with the ``[http]`` limits
    (header, body and idle timeouts, sizes: no slow or huge client holds it)."""
    async with open_gateway(config) as app:
        await serve_forever(
            app,
            host=config.gateway.host,
            port=config.gateway.port,
            limits=config.http,
            started=lambda server: log.info("sharing gateway on %s", server.url),
        )
