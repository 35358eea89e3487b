"""The adapter's internal routes (``/sparql``, ``/provenance/...``, ``/metrics``): served to
the sharing gateway on a shared secret, never on the caller's address alone.

Those paths answer with the values themselves (and ``/metrics`` with tenants, counts and the
index lag); partners read them through the gateway, which narrows them per agreement. So the
adapter requires ``Authorization: Bearer <secret>`` on them, the secret being the value of the
variable ``[provenance] service_token_env`` names (the gateway sends the same secret,
``[gateway] adapter_token_env``), compared in constant time. The address is an extra fence,
not a credential:

- no secret configured (the dev default, the demo, tests): loopback callers only (403 from
  elsewhere), and ``open_to_network = true`` is refused when the configuration is read;
- a secret configured: every caller must send it (401 otherwise), the loopback interface
  included; from other machines only with ``open_to_network = true`` (403 otherwise).

The published logs and keys (``/logs/...``, ``/.well-known/jwks.json``: digests and
signatures), ``/contexts/`` and ``/healthz`` are public and are not wrapped here.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from adapter.gateway import problem

if TYPE_CHECKING:
    from adapter.config import ProvenanceSettings

__all__ = ["ServiceGuard"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_BEARER = "bearer "


def _is_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def _bearer(request: web.Request) -> bytes | None:
    header = request.headers.get("Authorization", "")
    if header[: len(_BEARER)].lower() != _BEARER:
        return None
    return header[len(_BEARER) :].strip().encode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class ServiceGuard:
    """Who may call the adapter's internal routes: the holder of ``token`` (when set), from
    the loopback interface unless ``open_to_network``.

    ``ServiceGuard.from_settings(config.provenance).protect(routes)`` wraps routes; built at
    the start of ``serve`` and ``listen --http-port``, so a named but unset variable stops the
    start with a ``ConfigError`` instead of refusing every request later.
    """

    token: str | None = field(default=None, repr=False)
    open_to_network: bool = False

    def __post_init__(self) -> None:
        if self.open_to_network and not self.token:
            raise ValueError("open_to_network without a token would serve the data to anyone on the network")

    @classmethod
    def from_settings(cls, settings: ProvenanceSettings) -> ServiceGuard:
        """The guard of ``[provenance]``; raises ``ConfigError`` when ``service_token_env`` names
        an unset variable (``open_to_network`` without it is refused when the file is read)."""
        return cls(settings.required_service_token(), settings.open_to_network)

    def refusal(self, request: web.Request) -> web.Response | None:
        """The answer refusing ``request``, or None when it may be served."""
        if not self.open_to_network and not _is_loopback(request):
            hint = "" if self.token else "; configure [provenance] service_token_env to serve the sharing gateway"
            return problem(403, "Forbidden", f"this path is served to the adapter's own machine only{hint}")
        if self.token is not None:
            given = _bearer(request)
            # constant time: the comparison must not tell how much of a guess was right
            if given is None or not hmac.compare_digest(given, self.token.encode("utf-8")):
                answer = problem(
                    401, "Unauthorized", "this path needs the adapter's service token (Authorization: Bearer ...)"
                )
                answer.headers["WWW-Authenticate"] = 'Bearer realm="ngsild-adapter"'
                return answer
        return None

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            refused = self.refusal(request)
            return refused if refused is not None else await handler(request)

        return guarded

    def protect(self, routes: Sequence[web.RouteDef]) -> list[web.RouteDef]:
        """``routes``, answering only the callers this guard lets through."""
        return [web.RouteDef(r.method, r.path, self._guarded(r.handler), r.kwargs) for r in routes]
