"""Shared constants and builders of the broker tests: contexts, Link headers, entities."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse

__all__ = [
    "ADAPTER_CONTEXT",
    "CORE",
    "ERRORS",
    "SDM_ENVIRONMENT",
    "air_quality",
    "link",
    "problem",
]

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
SDM_ENVIRONMENT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
ADAPTER_CONTEXT = "https://w3id.org/ngsild-adapter/context.jsonld"
SDM = "https://smartdatamodels.org/dataModel.Environment/"


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


def air_quality(
    number: int, *, temperature: float = 11.2, observed: str = "2026-11-20T08:15:30.123Z", context: bool = False
) -> dict[str, Any]:
    """An AirQualityObserved entity like the adapter's, names as in the SDM context."""

    def measure(value: float, unit: str) -> dict[str, Any]:
        return {"type": "Property", "value": value, "observedAt": observed, "unitCode": unit}

    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:AirQualityObserved:ville:{number:04d}",
        "type": "AirQualityObserved",
        "temperature": measure(temperature, "CEL"),
        "relativeHumidity": measure(0.74, "C62"),
        "no2": measure(38.5, "GQ"),
        "pm10": measure(22.1, "GQ"),
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [-1.6794, 48.1109]}},
        "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:ville:{number:04d}"},
    }
    if context:
        entity["@context"] = [SDM_ENVIRONMENT, ADAPTER_CONTEXT, CORE]
    return entity


async def problem(response: ClientResponse) -> dict[str, Any]:
    """The ProblemDetails body of an error answer (checks its content type)."""
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    assert set(body) <= {"type", "title", "detail"}
    return body
