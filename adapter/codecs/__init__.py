"""Payload codecs: built-in ones (Cayenne LPP, the LNS's own decoding) and JavaScript files.

A device profile names its codec (``codec: {builtin: cayenne_lpp}`` or
``codec: {javascript: codecs/vendor.js}``); ``CodecRegistry`` builds each codec once and
keeps it, so a JavaScript file is loaded into its own QuickJS runtime a single time.
"""

from __future__ import annotations

from pathlib import Path

from adapter.codecs.base import Codec, CodecIdentity, CodecInput, DecodeResult
from adapter.codecs.cayenne import CayenneLPPCodec
from adapter.codecs.lns_decoded import LnsDecodedCodec
from adapter.exceptions import ConfigError
from adapter.mapping.profile import CodecSpec

__all__ = [
    "Codec",
    "CodecIdentity",
    "CodecInput",
    "CodecRegistry",
    "DecodeResult",
    "load_codec_file",
]


def load_codec_file(path: Path) -> Codec:
    """A codec from a file: JavaScript (``.js``) in the TTN or ChirpStack formats."""
    if path.suffix != ".js":
        raise ConfigError(f"codec file {path}: only JavaScript (.js) codecs are supported")
    from adapter.codecs.javascript import JavaScriptCodec  # the engine loads only when a profile needs it

    return JavaScriptCodec(path)


class CodecRegistry:
    def __init__(self) -> None:
        self._builtin: dict[str, Codec] = {"cayenne_lpp": CayenneLPPCodec(), "lns_decoded": LnsDecodedCodec()}
        self._files: dict[Path, Codec] = {}

    def get(self, spec: CodecSpec) -> Codec:
        if spec.kind != "javascript":
            return self._builtin[spec.kind]
        assert spec.file is not None
        codec = self._files.get(spec.file)
        if codec is None:
            codec = self._files[spec.file] = load_codec_file(spec.file)
        return codec

    def close(self) -> None:
        for codec in self._files.values():
            codec.close()
        self._files.clear()
