"""Subscriptions: checking them, keeping them compiled in memory, matching entity changes.

A subscription is stored as the user's fields plus its @context; at load and on every change
it is compiled (types and attribute names expanded with its own context, ``q`` and ``geoQ``
parsed) so that matching a write costs a few set and dict lookups. Matching happens after
the write's transaction; delivery is the notifier's job (``notifier.py``), so a write never
waits for an endpoint. One request gives at most one notification per subscription, with
every matching entity in ``data`` (Orion-LD's experimental mode).
"""

from __future__ import annotations

import builtins
import json
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapter.ngsild.broker.datetimes import normalize_datetime, now
from adapter.ngsild.broker.entities import Change
from adapter.ngsild.broker.errors import BadRequestData, OperationNotSupported
from adapter.ngsild.broker.geo import GeoQuery, parse_geo_query
from adapter.ngsild.broker.jsonld import TermContext
from adapter.ngsild.broker.payload import check_attribute_name, check_uri
from adapter.ngsild.broker.query import Query, parse_query
from adapter.ngsild.broker.store import StoredEntity

__all__ = [
    "ACCEPTS",
    "NOTIFICATION_FORMATS",
    "Subscription",
    "SubscriptionRegistry",
    "check_subscription",
    "compile_subscription",
    "new_status",
    "new_subscription_id",
]

NOTIFICATION_FORMATS = {
    "normalized": "normalized",
    "keyValues": "keyValues",
    "simplified": "keyValues",
    "concise": "concise",
}
ACCEPTS = ("application/json", "application/ld+json")
_FIELDS = frozenset(
    {
        "id",
        "type",
        "subscriptionName",
        "name",
        "description",
        "entities",
        "watchedAttributes",
        "q",
        "geoQ",
        "notification",
        "isActive",
        "expiresAt",
        "throttling",
        "lang",
        "csf",
        "notificationTrigger",
        "timeInterval",
    }
)
_NOTIFICATION_FIELDS = frozenset({"attributes", "format", "endpoint", "sysAttrs"})
_ENDPOINT_FIELDS = frozenset({"uri", "accept", "receiverInfo", "notifierInfo"})


def new_status() -> dict[str, Any]:
    return {"timesSent": 0, "timesFailed": 0}


def check_subscription(body: Any, *, partial: bool = False) -> dict[str, Any]:
    """The user's subscription fields, checked (``partial`` for a PATCH fragment)."""
    if not isinstance(body, dict):
        raise BadRequestData("Invalid subscription", "a subscription must be a JSON object")
    fields = {key: value for key, value in body.items() if key not in ("@context", "createdAt", "modifiedAt")}
    for key in fields:
        if key not in _FIELDS:
            raise BadRequestData("Unrecognized field in Subscription", key)
    if "timeInterval" in fields:
        raise OperationNotSupported("Not Implemented", "periodic subscriptions (timeInterval)")
    if "id" in fields:
        check_uri(fields["id"], "id")
    if "type" in fields and fields["type"] != "Subscription":
        raise BadRequestData("Invalid subscription type", "type must be 'Subscription'")
    if not partial and "type" not in fields:
        raise BadRequestData("Mandatory field missing", "type")
    for key in ("subscriptionName", "name", "description", "q"):
        if key in fields and not isinstance(fields[key], str):
            raise BadRequestData("Not a JSON String", key)
    if "entities" in fields:
        _check_entities(fields["entities"])
    if "watchedAttributes" in fields:
        _check_names(fields["watchedAttributes"], "watchedAttributes")
    if not partial and not fields.get("entities") and not fields.get("watchedAttributes"):
        raise BadRequestData("Invalid subscription", "entities or watchedAttributes is required")
    if "notification" in fields:
        _check_notification(fields["notification"], partial=partial)
    elif not partial:
        raise BadRequestData("Mandatory field missing", "notification")
    if "isActive" in fields and not isinstance(fields["isActive"], bool):
        raise BadRequestData("Not a JSON Boolean", "isActive")
    if "expiresAt" in fields:
        if not isinstance(fields["expiresAt"], str):
            raise BadRequestData("Not a JSON String", "expiresAt")
        fields["expiresAt"] = normalize_datetime(fields["expiresAt"])
    if "throttling" in fields:
        throttling = fields["throttling"]
        if type(throttling) not in (int, float) or throttling <= 0:
            raise BadRequestData("Invalid throttling", "throttling must be a positive number of seconds")
    if "geoQ" in fields and not isinstance(fields["geoQ"], dict):
        raise BadRequestData("Invalid geoQ", "geoQ must be a JSON object")
    return fields


def _check_entities(entities: Any) -> None:
    if not isinstance(entities, list) or not entities:
        raise BadRequestData("Invalid entities", "entities must be a non-empty array")
    for selector in entities:
        if not isinstance(selector, dict) or not isinstance(selector.get("type"), str):
            raise BadRequestData("Invalid entities", "each entity selector needs a type")
        if "id" in selector:
            check_uri(selector["id"], "entities[].id")
        if "idPattern" in selector:
            try:
                re.compile(selector["idPattern"])
            except (re.error, TypeError) as exc:
                raise BadRequestData("Invalid idPattern", str(selector["idPattern"])) from exc


def _check_names(names: Any, field_name: str) -> None:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise BadRequestData(f"Invalid {field_name}", "a non-empty array of attribute names")
    for name in names:
        check_attribute_name(name)


def _check_notification(notification: Any, *, partial: bool) -> None:
    if not isinstance(notification, dict):
        raise BadRequestData("Invalid notification", "notification must be a JSON object")
    for key in notification:
        if key not in _NOTIFICATION_FIELDS:
            raise BadRequestData("Unrecognized field in Subscription::notification", key)
    if "attributes" in notification:
        _check_names(notification["attributes"], "notification::attributes")
    if "format" in notification and notification["format"] not in NOTIFICATION_FORMATS:
        raise BadRequestData("Invalid notification format", str(notification["format"]))
    endpoint = notification.get("endpoint")
    if endpoint is None:
        if not partial:
            raise BadRequestData("Mandatory field missing", "notification::endpoint")
        return
    if not isinstance(endpoint, dict):
        raise BadRequestData("Invalid endpoint", "endpoint must be a JSON object")
    for key in endpoint:
        if key not in _ENDPOINT_FIELDS:
            raise BadRequestData("Unrecognized field in Subscription::notification::endpoint", key)
    uri = endpoint.get("uri")
    if not isinstance(uri, str) or not uri:
        raise BadRequestData("Mandatory field missing", "notification::endpoint::uri")
    check_uri(uri, "notification::endpoint::uri")
    if not uri.startswith(("http://", "https://")):
        raise OperationNotSupported("Not Implemented", f"notifications to {uri.split(':')[0]} endpoints")
    if "accept" in endpoint and endpoint["accept"] not in ACCEPTS:
        raise BadRequestData("Invalid notification accept", str(endpoint["accept"]))


@dataclass(slots=True)
class Subscription:
    """A subscription compiled for matching; ``status`` changes as notifications go out."""

    tenant: str
    fields: dict[str, Any]
    context: TermContext
    link: str
    created_at: str
    modified_at: str
    status: dict[str, Any]
    selectors: list[tuple[str | None, re.Pattern[str] | None, str]] = field(default_factory=list)
    watched: frozenset[str] | None = None
    attributes: frozenset[str] | None = None
    query: Query | None = None
    geo: GeoQuery | None = None
    last_notified: float = 0.0

    @property
    def id(self) -> str:
        sub_id: str = self.fields["id"]
        return sub_id

    @property
    def format(self) -> str:
        return NOTIFICATION_FORMATS[self.fields["notification"].get("format", "normalized")]

    @property
    def endpoint(self) -> dict[str, Any]:
        endpoint: dict[str, Any] = self.fields["notification"]["endpoint"]
        return endpoint

    @property
    def active(self) -> bool:
        if not self.fields.get("isActive", True):
            return False
        expires = self.fields.get("expiresAt")
        return expires is None or expires > now()

    def stored(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "@context": self.context.value,
            "link": self.link,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
        }

    def selects(self, change: Change) -> bool:
        entity = change.entity
        if self.selectors and not any(
            entity.type == type_
            and (sub_id is None or sub_id == entity.id)
            and (pattern is None or pattern.search(entity.id) is not None)
            for sub_id, pattern, type_ in self.selectors
        ):
            return False
        if self.watched is not None and self.watched.isdisjoint(change.attributes):
            return False
        if self.query is not None and not self.query.matches(entity.attrs):
            return False
        if self.geo is not None:
            attribute = entity.attrs.get(self.geo.geoproperty)
            if attribute is None or not self.geo.matches(attribute.get("value")):
                return False
        return True

    def render(self, context: TermContext, *, sys_attrs: bool = False) -> dict[str, Any]:
        """The NGSI-LD representation, names compacted with ``context``."""
        fields = self.fields
        out: dict[str, Any] = {"id": self.id, "type": "Subscription"}
        for key in ("subscriptionName", "name", "description"):
            if key in fields:
                out[key] = fields[key]
        if self.selectors:
            out["entities"] = [
                {
                    **({"id": s[0]} if s[0] else {}),
                    **({"idPattern": s[1].pattern} if s[1] else {}),
                    "type": context.compact(s[2]),
                }
                for s in self.selectors
            ]
        if self.watched is not None:
            watched = _expand_all(fields["watchedAttributes"], self.context)
            out["watchedAttributes"] = [context.compact(name) for name in watched]
        for key in ("q", "geoQ", "isActive", "expiresAt", "throttling", "lang"):
            if key in fields:
                out[key] = fields[key]
        out.setdefault("isActive", True)
        out["status"] = "active" if self.active else ("paused" if not fields.get("isActive", True) else "expired")
        notification = dict(fields["notification"])
        if self.attributes is not None:
            notification["attributes"] = [
                context.compact(n) for n in _expand_all(notification["attributes"], self.context)
            ]
        notification["format"] = notification.get("format", "normalized")
        notification["endpoint"] = {"accept": "application/json", **notification["endpoint"]}
        notification.update(self.status)
        if "lastFailure" in self.status or "lastSuccess" in self.status:
            notification["status"] = (
                "failed" if self.status.get("lastFailure", "") > self.status.get("lastSuccess", "") else "ok"
            )
        out["notification"] = notification
        out["jsonldContext"] = self.link
        if sys_attrs:
            out["createdAt"] = self.created_at
            out["modifiedAt"] = self.modified_at
        return out


def _expand_all(names: Iterable[str], context: TermContext) -> list[str]:
    return [context.expand(name) for name in names]


def compile_subscription(
    tenant: str,
    fields: dict[str, Any],
    context: TermContext,
    link: str,
    created_at: str,
    modified_at: str,
    status: dict[str, Any],
) -> Subscription:
    """Expands and parses a checked subscription; raises ``BadRequestData`` on a bad q/geoQ."""
    sub = Subscription(tenant, fields, context, link, created_at, modified_at, status)
    for selector in fields.get("entities", []):
        pattern = selector.get("idPattern")
        sub.selectors.append(
            (selector.get("id"), re.compile(pattern) if pattern else None, context.expand(selector["type"]))
        )
    if fields.get("watchedAttributes"):
        sub.watched = frozenset(_expand_all(fields["watchedAttributes"], context))
    if fields["notification"].get("attributes"):
        sub.attributes = frozenset(_expand_all(fields["notification"]["attributes"], context))
    if fields.get("q"):
        sub.query = parse_query(fields["q"], context)
    geo = fields.get("geoQ")
    if geo:
        coordinates = geo.get("coordinates")
        sub.geo = parse_geo_query(
            geo.get("georel"),
            geo.get("geometry"),
            coordinates if isinstance(coordinates, str) or coordinates is None else json.dumps(coordinates),
            context.expand(geo.get("geoproperty", "location")),
        )
    return sub


def new_subscription_id() -> str:
    return f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"


class SubscriptionRegistry:
    """The compiled subscriptions of every tenant, in creation order."""

    def __init__(self) -> None:
        self._by_tenant: dict[str, dict[str, Subscription]] = {}

    def add(self, sub: Subscription) -> None:
        self._by_tenant.setdefault(sub.tenant, {})[sub.id] = sub

    def get(self, tenant: str, sub_id: str) -> Subscription | None:
        return self._by_tenant.get(tenant, {}).get(sub_id)

    def remove(self, tenant: str, sub_id: str) -> None:
        self._by_tenant.get(tenant, {}).pop(sub_id, None)

    def list(self, tenant: str) -> list[Subscription]:
        return list(self._by_tenant.get(tenant, {}).values())

    def match(
        self, tenant: str, changes: Sequence[Change]
    ) -> builtins.list[tuple[Subscription, builtins.list[StoredEntity]]]:
        """Per active subscription, the changed entities it selects (throttled ones skipped)."""
        subs = self._by_tenant.get(tenant)
        if not subs or not changes:
            return []
        found = []
        moment = time.monotonic()
        for sub in subs.values():
            if not sub.active:
                continue
            entities = [change.entity for change in changes if sub.selects(change)]
            if not entities:
                continue
            throttling = sub.fields.get("throttling")
            if throttling and sub.last_notified and moment - sub.last_notified < throttling:
                continue
            sub.last_notified = moment
            found.append((sub, entities))
        return found
