"""Partner subscriptions through the gateway: registered at the broker by the gateway, whose
notifications come back to the gateway, are filtered to the agreement, and only then go on to
the partner.

Why not let partners subscribe at the broker: the broker would notify them of every attribute
of every matching entity. Here the broker notifies the gateway (a URL holding a secret only
the gateway knows), and each notification is decided again (an agreement revoked since stops
the flow: the subscription is then removed) and filtered with the same rules as a read
(``adapter.gateway.enforce``) before it is forwarded. Each forwarded notification is an
access in the access log.

Notification endpoints are partners' URLs: the gateway only POSTs to URLs its endpoint policy
allows (``adapter.gateway.endpoints``: an allowlist of prefixes compared on the parsed URL, and
public addresses only, checked at every connection; deny by default), never following a
redirect, so that a subscription cannot make the gateway call internal services.

The stored subscription keeps the partner's request as received: at each notification it is
parsed and decided again (``adapter.gateway.parse.subscription_from``, ``adapter.access.decide``),
so that a notification meets the rules of the agreements in force, as a read would.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.access.model import Principal
from adapter.sqlite import open_database

__all__ = ["MAX_PER_PRINCIPAL", "GatewaySubscription", "SubscriptionStore"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_subscription (
    id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    tenant TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    purpose TEXT,
    principal TEXT NOT NULL,        -- JSON: issuer, subject, organization, roles, groups, client_id, username
    endpoint TEXT NOT NULL,         -- the partner's notification URL
    accept TEXT NOT NULL,
    attributes TEXT,                -- JSON list asked for, or NULL
    broker_id TEXT,                 -- the subscription at the broker
    request TEXT NOT NULL,          -- the partner's subscription as received (JSON), expiresAt filled in
    built TEXT                      -- SHA-256 of the body the broker subscription was made with
);
"""
#: the gateway's subscriptions of one principal at most (each one is a broker subscription)
MAX_PER_PRINCIPAL = 100


def _principal_json(principal: Principal) -> str:
    return json.dumps(
        {
            "issuer": principal.issuer,
            "subject": principal.subject,
            "organization": principal.organization,
            "roles": sorted(principal.roles),
            "groups": sorted(principal.groups),
            "client_id": principal.client_id,
            "username": principal.username,
            "identity_provider": principal.identity_provider,
        }
    )


def _owner(text: str) -> tuple[str, str]:
    data = json.loads(text)
    return data["issuer"], data["subject"]


def _principal(text: str) -> Principal:
    data = json.loads(text)
    return Principal(
        data["issuer"],
        data["subject"],
        data["organization"],
        frozenset(data["roles"]),
        frozenset(data["groups"]),
        data["client_id"],
        data["username"],
        data.get("identity_provider"),
    )


@dataclass(frozen=True, slots=True)
class GatewaySubscription:
    id: str
    secret: str
    tenant: str
    entity_type: str
    purpose: str | None
    principal: Principal
    endpoint: str
    accept: str
    attributes: tuple[str, ...] | None
    broker_id: str | None
    request: dict[str, Any]

    def owned_by(self, principal: Principal) -> bool:
        """The same bearer: issuer and subject (a service account's subject is its client's)."""
        return self.principal.issuer == principal.issuer and self.principal.subject == principal.subject

    def secret_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(self.secret, candidate)

    def to_ngsi(self) -> dict[str, Any]:
        """The subscription as its owner sees it (its own request, with the gateway's id)."""
        return {**self.request, "id": self.id, "type": "Subscription"}


class SubscriptionStore:
    """The gateway's subscriptions, in its SQLite file (``":memory:"`` for tests)."""

    def __init__(self, path: Path | str) -> None:
        self._db: sqlite3.Connection = open_database(path, _SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(gateway_subscription)")}
        if "built" not in columns:  # a store of the first design
            self._db.execute("ALTER TABLE gateway_subscription ADD COLUMN built TEXT")

    def close(self) -> None:
        self._db.close()

    def add(
        self,
        *,
        tenant: str,
        entity_type: str,
        purpose: str | None,
        principal: Principal,
        endpoint: str,
        accept: str,
        attributes: Sequence[str] | None,
        request: dict[str, Any],
    ) -> GatewaySubscription:
        subscription = GatewaySubscription(
            f"urn:ngsi-ld:Subscription:gateway:{secrets.token_hex(12)}",
            secrets.token_urlsafe(24),
            tenant,
            entity_type,
            purpose,
            principal,
            endpoint,
            accept,
            tuple(attributes) if attributes is not None else None,
            None,
            request,
        )
        self._db.execute(
            "INSERT INTO gateway_subscription VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                subscription.id,
                subscription.secret,
                tenant,
                entity_type,
                purpose,
                _principal_json(principal),
                endpoint,
                accept,
                None if attributes is None else json.dumps(list(attributes)),
                None,
                json.dumps(request),
            ),
        )
        return subscription

    def set_broker_id(self, subscription_id: str, broker_id: str, built: str | None = None) -> None:
        """The broker's subscription, and the digest of the body it was made with (``built``)."""
        self._db.execute(
            "UPDATE gateway_subscription SET broker_id = ?, built = ? WHERE id = ?", (broker_id, built, subscription_id)
        )

    def built(self, subscription_id: str) -> str | None:
        row = self._db.execute("SELECT built FROM gateway_subscription WHERE id = ?", (subscription_id,)).fetchone()
        return None if row is None else row[0]

    def count_owned(self, principal: Principal) -> int:
        """How many subscriptions ``principal`` has (issuer and subject)."""
        return sum(
            1
            for (text,) in self._db.execute("SELECT principal FROM gateway_subscription")
            if _owner(text) == (principal.issuer, principal.subject)
        )

    def get(self, subscription_id: str) -> GatewaySubscription | None:
        row = self._db.execute(
            "SELECT id, secret, tenant, entity_type, purpose, principal, endpoint, accept, attributes, broker_id, request "
            "FROM gateway_subscription WHERE id = ?",
            (subscription_id,),
        ).fetchone()
        if row is None:
            return None
        return GatewaySubscription(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            _principal(row[5]),
            row[6],
            row[7],
            None if row[8] is None else tuple(json.loads(row[8])),
            row[9],
            json.loads(row[10]),
        )

    def owned_by(self, principal: Principal) -> list[GatewaySubscription]:
        ids = [r[0] for r in self._db.execute("SELECT id FROM gateway_subscription ORDER BY id")]
        found = [self.get(i) for i in ids]
        return [s for s in found if s is not None and s.owned_by(principal)]

    def remove(self, subscription_id: str) -> None:
        self._db.execute("DELETE FROM gateway_subscription WHERE id = ?", (subscription_id,))
