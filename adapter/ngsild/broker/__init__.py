"""The embedded NGSI-LD broker: the development and test default, never a production broker.

No Orion-LD or MongoDB can run on the project's development machines, so the package ships a
small broker that answers like Orion-LD (experimental mode, with multi-tenancy) on every
operation the project uses, plus the temporal API that Mintaka serves next to Orion-LD.
Production runs Orion-LD (``compose/``); the adapter only talks NGSI-LD over HTTP, so the two
are interchangeable. Known differences are listed in ``adapter/ngsild/broker/README.md``.

    app = create_broker_app()                # in memory, for tests (aiohttp TestServer)
    await run_broker("127.0.0.1", 1026, Path("var/broker.db"))   # the CLI's `broker` command
"""

from __future__ import annotations

from adapter.ngsild.broker.app import create_broker_app, run_broker

__all__ = ["create_broker_app", "run_broker"]
