"""The interface every payload codec implements.

A codec turns the bytes of one uplink into a JSON object of measurements. It never
raises anything but ``CodecError``; a codec that reports errors (the TTN
``{"errors": [...]}`` convention) is a rejection too, decided by the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

__all__ = ["Codec", "CodecIdentity", "CodecInput", "DecodeResult"]


@dataclass(frozen=True, slots=True)
class CodecIdentity:
    """Which codec produced a value: its name and the SHA-256 of its source file.

    Built-in codecs use the digest of their Python module, so a change of code is a
    change of identity too.
    """

    name: str
    digest: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.digest}


@dataclass(frozen=True, slots=True)
class CodecInput:
    payload: bytes
    f_port: int | None
    received_at: datetime
    variables: Mapping[str, str] = field(default_factory=dict)  # device tags / profile variables
    lns_decoded: Mapping[str, Any] | None = None  # what the network server already decoded


@dataclass(frozen=True, slots=True)
class DecodeResult:
    data: dict[str, Any]
    codec: CodecIdentity
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The shape the ``decode`` command prints (TTN Device Repository convention)."""
        return {"data": self.data, "warnings": list(self.warnings), "errors": list(self.errors)}


class Codec(Protocol):
    identity: CodecIdentity

    def decode(self, codec_input: CodecInput) -> DecodeResult:
        """Decode one payload. Raises ``CodecError`` (reason ``codec_*``) on failure."""
        ...

    def close(self) -> None:
        """Release what the codec holds (a JavaScript runtime, for instance)."""
        ...
