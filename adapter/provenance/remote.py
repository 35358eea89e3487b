"""Verifying from a partner's side: evidence read over HTTP from the adapter's published
resources, trusting nothing the adapter says but what its collectivity's key signed.

The partner pins the collectivity's verifier key (``ngsild-adapter verify --from URL --key
VKEY``); the server serves the records, the signed tree head, the log's entry bundles (the
leaves, C2SP tlog-tiles) and inclusion proofs, and the device chain's neighbours. A server that
serves a forged record, leaf, proof, tree head or chain link fails a check, as the local
verifier's would. Without a pinned key the server's own key is used, and the report says so.

The RDF index is not checked from outside (it is the server's convenience, rebuilt from the
log; the log is what is signed).

Through the sharing gateway, whole records need a token (``token``) whose agreements open the
collectivity's personal graph; a refusal is a ``RemoteRefused`` naming the gateway's reason.
"""

from __future__ import annotations

import base64
import json
import struct
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from adapter.exceptions import AdapterError
from adapter.provenance.integrity import IntegrityError
from adapter.provenance.integrity.checkpoint import Checkpoint
from adapter.provenance.integrity.note import KeyFormatError, NoteVerifier
from adapter.provenance.integrity.tiles import TILE_WIDTH, EntryBundle
from adapter.provenance.verify import BrokerRead, BrokerValue, Check

__all__ = ["HttpEvidence", "RemoteRefused"]


class RemoteRefused(AdapterError):
    """The server (a sharing gateway) refused to serve a resource the verifier needs."""


class HttpEvidence:
    """``Evidence`` (``adapter.provenance.verify``) from an adapter at ``base_url``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        pinned_key: NoteVerifier | None,
        broker: BrokerRead | None = None,
        token: str | None = None,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._pinned = pinned_key
        self._broker = broker
        self._checkpoints: dict[str, bytes | None] = {}

    async def _get(self, path: str, **params: Any) -> bytes | None:
        async with self._session.get(self._base + path, params=params or None, headers=self._headers) as answer:
            if answer.status == 404:
                return None
            if answer.status in (401, 403):
                try:
                    detail = (await answer.json(content_type=None)).get("detail", "")
                except (ValueError, AttributeError):
                    detail = ""
                raise RemoteRefused(f"{self._base}{path}: refused ({answer.status}) {detail}".rstrip())
            answer.raise_for_status()
            return await answer.read()

    async def record_text(self, tenant: str, index: int) -> str | None:
        body = await self._get(f"/provenance/{quote(tenant)}/uplinks/{index}/record")
        return None if body is None else body.decode("utf-8")

    async def chain_record_text(self, tenant: str, dev_eui: str, seq: int) -> str | None:
        body = await self._get(f"/provenance/{quote(tenant)}/devices/{quote(dev_eui)}/records/{seq}")
        return None if body is None else body.decode("utf-8")

    async def chain_length(self, tenant: str, dev_eui: str) -> int:
        body = await self._get(f"/provenance/{quote(tenant)}/devices/{quote(dev_eui)}")
        return 0 if body is None else int(json.loads(body)["chainLength"])

    async def signed_checkpoint(self, tenant: str) -> bytes | None:
        if tenant not in self._checkpoints:
            self._checkpoints[tenant] = await self._get(f"/logs/{quote(tenant)}/checkpoint")
        return self._checkpoints[tenant]

    async def leaf(self, tenant: str, index: int) -> bytes | None:
        """The entry at ``index``, read from the entry bundle of the published tree."""
        note = await self.signed_checkpoint(tenant)
        if note is None:
            return None
        try:  # not verified here: only to find the bundle (the signature check comes after)
            size = Checkpoint.parse(note.decode("utf-8").split("\n\n", 1)[0] + "\n").size
        except (IntegrityError, UnicodeDecodeError):
            return None
        if index >= size:
            return None
        bundle_index = index // TILE_WIDTH
        width = min(TILE_WIDTH, size - bundle_index * TILE_WIDTH)
        body = await self._get(f"/logs/{quote(tenant)}/{EntryBundle(bundle_index, width).path}")
        if body is None:
            return None
        entries = []
        offset = 0
        while offset + 2 <= len(body):
            (length,) = struct.unpack(">H", body[offset : offset + 2])
            entries.append(body[offset + 2 : offset + 2 + length])
            offset += 2 + length
        position = index - bundle_index * TILE_WIDTH
        return entries[position] if position < len(entries) else None

    async def inclusion_proof(self, tenant: str, index: int, size: int) -> list[bytes]:
        body = await self._get(f"/logs/{quote(tenant)}/proof/inclusion", index=index, size=size)
        if body is None:
            raise LookupError(f"the server has no inclusion proof of leaf {index} in a tree of size {size}")
        return [base64.b64decode(h) for h in json.loads(body)["proof"]]

    async def verifier_key(self, tenant: str) -> NoteVerifier | None:
        if self._pinned is not None:
            return self._pinned
        body = await self._get(f"/logs/{quote(tenant)}/key")
        try:
            return None if body is None else NoteVerifier.from_vkey(body.decode("utf-8").strip())
        except (KeyFormatError, UnicodeDecodeError):
            return None

    async def broker_value(
        self, tenant: str, entity_id: str, attribute: str, observed_at: datetime
    ) -> BrokerValue | None:
        return None if self._broker is None else await self._broker(tenant, entity_id, attribute, observed_at)

    async def index_check(self, tenant: str, index: int, record: dict[str, Any]) -> Check | None:
        return None  # see the module docstring
