"""The network server's own decoding: ChirpStack's ``object``, The Things Stack's ``decoded_payload``.

When the LNS already runs the device's codec, the adapter takes its result as it is. The
codec identity says so ("lns_decoded"), and the digest covers this module: the LNS's
codec itself is outside our reach, which the provenance record states plainly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from adapter.codecs.base import CodecIdentity, CodecInput, DecodeResult
from adapter.exceptions import CodecError

__all__ = ["LnsDecodedCodec"]


class LnsDecodedCodec:
    identity = CodecIdentity(name="builtin:lns_decoded", digest=hashlib.sha256(Path(__file__).read_bytes()).hexdigest())

    def decode(self, codec_input: CodecInput) -> DecodeResult:
        decoded = codec_input.lns_decoded
        if decoded is None:
            raise CodecError("codec_error", "the network server sent no decoded object for this uplink")
        if not isinstance(decoded, dict):
            raise CodecError("codec_non_json", f"the network server's decoded object is a {type(decoded).__name__}")
        # TTS puts decoder warnings and errors beside the data; ChirpStack only sends data.
        return DecodeResult(data=dict(decoded), codec=self.identity)

    def close(self) -> None:
        return None
