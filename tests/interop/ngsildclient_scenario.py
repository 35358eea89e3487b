"""What a partner platform does with ngsildclient, run against a broker given on the command line.

Runs in its own virtualenv (``.venv-interop``, made by ``make setup``): ngsildclient pins
old versions of httpx and aiofiles, which must never hold the adapter's dependencies back.
Prints one JSON object with what it observed; the test beside it checks that object.

    .venv-interop/bin/python tests/interop/ngsildclient_scenario.py HOST PORT TENANT
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone

from ngsildclient import Client, Entity

SDM_ENVIRONMENT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"


def main() -> None:
    host, port, tenant = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    observed: dict[str, object] = {}
    start = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
    with Client(hostname=host, port=port, tenant=tenant, verbose=False) as client:
        entity = Entity(
            "AirQualityObserved", "urn:ngsi-ld:AirQualityObserved:partner:station-1", ctx=[SDM_ENVIRONMENT, CORE]
        )
        entity.prop("no2", 21.0, unitcode="GQ", observedat=start)
        entity.loc(48.11, -1.68)
        observed["created"] = client.create(entity)

        # three later observations, as an adapter's upserts would leave them
        for hour, value in ((1, 34.5), (2, 48.0), (3, 29.5)):
            update = Entity(
                "AirQualityObserved", "urn:ngsi-ld:AirQualityObserved:partner:station-1", ctx=[SDM_ENVIRONMENT, CORE]
            )
            update.prop("no2", value, unitcode="GQ", observedat=start + timedelta(hours=hour))
            client.upsert([update], update=True)  # a list: the batch endpoint, options=update

        got = client.get("urn:ngsi-ld:AirQualityObserved:partner:station-1", ctx=SDM_ENVIRONMENT)
        observed["no2"] = got["no2"]["value"]
        observed["unitCode"] = got["no2"]["unitCode"]
        observed["location"] = got["location"]["value"]["coordinates"]

        high = client.query(type="AirQualityObserved", q="no2>25", ctx=SDM_ENVIRONMENT)
        observed["query_ids"] = [e.id for e in high]
        observed["query_none"] = [
            e.id for e in client.query(type="AirQualityObserved", q="no2>100", ctx=SDM_ENVIRONMENT)
        ]
        observed["count"] = client.entities.count(type="AirQualityObserved", ctx=SDM_ENVIRONMENT)
        observed["count_without_context"] = client.count(type="AirQualityObserved")  # another vocabulary

        history = client.temporal.get("urn:ngsi-ld:AirQualityObserved:partner:station-1", ctx=SDM_ENVIRONMENT)
        observed["temporal"] = history
    print(json.dumps(observed, default=str))


if __name__ == "__main__":
    main()
