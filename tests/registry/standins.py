"""Stand-ins for the network servers' registry APIs, for the registry import tests.

No real ChirpStack or The Things Stack runs on this machine, so:

- ``ChirpStackStandIn`` is a real gRPC server (``grpc.aio``, on 127.0.0.1) built from the
  official ``chirpstack-api`` service definitions: it subclasses the generated
  ``DeviceServiceServicer`` and is registered with the generated
  ``add_DeviceServiceServicer_to_server``, so requests and answers are ChirpStack's own
  protobuf messages on the wire. It answers ``List`` as ChirpStack v4 does: the API token
  from the ``authorization: Bearer <token>`` metadata (UNAUTHENTICATED when missing or
  wrong), ``limit``/``offset`` pages of ``DeviceListItem`` ordered by name, and
  ``total_count`` the size of the whole list. An application it does not hold answers
  NOT_FOUND. It is a stand-in: ChirpStack's own storage, permissions and validations are
  not reproduced beyond this.
- ``tts_app`` is an aiohttp application answering The Things Stack's
  ``GET /api/v3/applications/{id}/devices`` as documented: ``Authorization: Bearer`` API
  key (401 otherwise), ``limit``/``page`` (page 0 and 1 are both the first), the total in
  ``X-Total-Count``, ``{"end_devices": [...]}`` with the key left out when empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from chirpstack_api.api import device_pb2, device_pb2_grpc

__all__ = ["ChirpStackStandIn", "TtsStandIn", "tts_app"]


@dataclass
class ChirpStackStandIn(device_pb2_grpc.DeviceServiceServicer):
    """The device lists of ChirpStack applications, by application id."""

    token: str
    applications: dict[str, list[device_pb2.DeviceListItem]] = field(default_factory=dict)
    #: every List request received: (application_id, limit, offset)
    requests: list[tuple[str, int, int]] = field(default_factory=list)
    #: when set, every call fails with this status (an overloaded or broken ChirpStack)
    failing: grpc.StatusCode | None = None
    #: when set, a hostile server: every device in one page, whatever the limit, under this total count
    lying_total: int | None = None

    async def List(
        self,
        request: device_pb2.ListDevicesRequest,  # noqa: N802 (the generated name)
        context: grpc.aio.ServicerContext,
    ) -> device_pb2.ListDevicesResponse:
        self.requests.append((request.application_id, request.limit, request.offset))
        metadata = dict(context.invocation_metadata() or ())
        if metadata.get("authorization") != f"Bearer {self.token}":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "authorization header missing or invalid token")
        if self.failing is not None:
            await context.abort(self.failing, "the stand-in was told to fail")
        if request.application_id not in self.applications:
            await context.abort(grpc.StatusCode.NOT_FOUND, "Object does not exist")
        devices = sorted(self.applications[request.application_id], key=lambda d: (d.name, d.dev_eui))
        if self.lying_total is not None:
            return device_pb2.ListDevicesResponse(total_count=self.lying_total, result=devices)
        page = devices[request.offset : request.offset + request.limit]
        return device_pb2.ListDevicesResponse(total_count=len(devices), result=page)

    async def serve(self) -> tuple[grpc.aio.Server, str]:
        """Start on an ephemeral port of 127.0.0.1; returns the server and its http:// url."""
        server = grpc.aio.server()
        device_pb2_grpc.add_DeviceServiceServicer_to_server(self, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, f"http://127.0.0.1:{port}"


def chirpstack_device(
    dev_eui: str, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
) -> device_pb2.DeviceListItem:
    return device_pb2.DeviceListItem(dev_eui=dev_eui, name=name, description=description, tags=dict(tags or {}))


@dataclass
class TtsStandIn:
    """The end devices of TTS applications, by application id (as JSON objects)."""

    key: str
    applications: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    status: int | None = None  # when set, every request gets this status
    body: bytes | None = None  # when set, every request gets this body (200)


def tts_app(standin: TtsStandIn) -> web.Application:
    async def devices(request: web.Request) -> web.StreamResponse:
        standin.requests.append(dict(request.query))
        if request.headers.get("Authorization") != f"Bearer {standin.key}":
            return web.json_response({"code": 16, "message": "error:pkg/auth:token_not_found"}, status=401)
        if standin.status is not None:
            return web.json_response({"code": 14, "message": "unavailable"}, status=standin.status)
        if standin.body is not None:
            return web.Response(body=standin.body, content_type="application/json")
        listed = standin.applications.get(request.match_info["application"])
        if listed is None:
            return web.json_response(
                {"code": 5, "message": "error:pkg/identityserver/store:application_not_found"}, status=404
            )
        limit = int(request.query.get("limit", "50"))
        page = max(1, int(request.query.get("page", "1")))
        ordered = sorted(listed, key=lambda d: d["ids"]["device_id"])
        chunk = ordered[(page - 1) * limit : page * limit]
        body: dict[str, Any] = {"end_devices": chunk} if chunk else {}
        pages = math.ceil(len(ordered) / limit) if limit else 1
        assert page <= pages + 1  # the importer never asks far past the end
        return web.json_response(body, headers={"X-Total-Count": str(len(ordered))})

    app = web.Application()
    app.router.add_get("/api/v3/applications/{application}/devices", devices)
    return app


def tts_device(
    device_id: str,
    dev_eui: str | None,
    application: str,
    *,
    name: str = "",
    description: str = "",
    attributes: Mapping[str, str] | None = None,
    location: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An end device as TTS's JSON renders it (empty fields left out, as proto3 JSON does)."""
    ids: dict[str, Any] = {"device_id": device_id, "application_ids": {"application_id": application}}
    if dev_eui is not None:
        ids["dev_eui"] = dev_eui
    device: dict[str, Any] = {
        "ids": ids,
        "created_at": "2026-11-02T09:12:44.120Z",
        "updated_at": "2026-11-30T16:01:02.007Z",
    }
    if name:
        device["name"] = name
    if description:
        device["description"] = description
    if attributes:
        device["attributes"] = dict(attributes)
    if location is not None:
        device["locations"] = {"user": {**location, "source": "SOURCE_REGISTRY"}}
    return device
