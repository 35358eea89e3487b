"""Run vendor JavaScript payload codecs, unchanged, in an embedded JavaScript engine.

Device makers publish their decoders as JavaScript for one of three runtimes: The
Things Network Device Repository and ChirpStack v4 (``decodeUplink(input)``) and
ChirpStack v3 (``Decode(fPort, bytes, variables)``). Running those files as they are
is the only way to stay in step with the vendors, so this module hosts them in
QuickJS (the maintained QuickJS-NG engine, package ``quickjs-ng``) and defends the
adapter against what such files do:

* Each codec file gets its own QuickJS runtime, loaded once (files declare top-level
  ``const``/``let``, which cannot be declared twice in one context), with harmless
  Node-style ``module``/``exports``/``global`` shims (``process`` stays undefined) and
  a ``console`` whose output during a call becomes warnings, after the codec's own
  (at most 20 lines of 500 characters).
* Every call has a time limit and the runtime a hard memory limit. After a timeout or
  an out-of-memory the runtime may be half-way through a mutation of its globals, so
  it is thrown away and the codec is loaded again on the next call.
* Results cross into Python only as JSON text produced by a walker defined *before*
  the codec runs (``javascript_prelude``), from intrinsics captured at that time and
  reading own enumerable keys only, as ``JSON.stringify`` does: codecs overwrite
  globals and add enumerable members to ``Object.prototype``. What JSON cannot hold is
  an error naming the path of the value rather than ``JSON.stringify``'s silent
  ``null`` or omission: NaN and infinities (a reading that became ``null`` would be
  stored as a reading), ``undefined``, functions, symbols, BigInts, lone surrogates,
  cycles. ``Date`` objects become ISO 8601 strings, as ``JSON.stringify`` makes them.
  The text is at most ``MAX_RESULT_CHARS`` long and ``MAX_RESULT_DEPTH`` deep.
* The text is always a flat string: the binding cannot read QuickJS-NG's rope strings
  (``TypeError: Unknown quickjs tag: -6``, see ``javascript_prelude``), and any error
  of the binding itself becomes a ``CodecError``, never an exception of another kind.
* ``input.recvTime`` is a JavaScript ``Date``, as the LoRaWAN codec API, The Things
  Stack and ChirpStack v4 provide it.

Why QuickJS rather than V8 (mini-racer): a call into V8 through mini-racer crosses
threads and costs 200-300 µs even for an empty function, which capped the pipeline near
2,000 uplinks/s; a QuickJS call runs in the caller's thread in about 2 µs. Codecs are
small, synchronous programs; QuickJS implements the ECMAScript versions they are
written in.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Literal, cast

import quickjs

from adapter.codecs.base import CodecIdentity, CodecInput, DecodeResult
from adapter.codecs.javascript_prelude import GLOBAL_NAME, prelude
from adapter.exceptions import CodecError, ConfigError

__all__ = ["MAX_RESULT_CHARS", "MAX_RESULT_DEPTH", "JavaScriptCodec", "load_javascript_codec"]

EntryPoint = Literal["decodeUplink", "Decode"]

#: Time allowed to compile and run a codec file's top-level code (large vendor files
#: take far longer to load than to decode one payload).
_LOAD_TIMEOUT_S = 5.0

#: The largest result accepted, in characters of JSON text, and the deepest nesting of
#: objects and arrays under ``data``: vendor results are a few hundred characters and a few
#: levels; what goes past these is a runaway codec, refused before Python parses it.
MAX_RESULT_CHARS = 1_000_000
MAX_RESULT_DEPTH = 64

_GLOBAL = GLOBAL_NAME
_PRELUDE = prelude(max_depth=MAX_RESULT_DEPTH, max_chars=MAX_RESULT_CHARS)

_BIND = (
    f"{_GLOBAL}.bind("
    "typeof decodeUplink === 'undefined' ? undefined : decodeUplink, "
    "typeof Decode === 'undefined' ? undefined : Decode)"
)


def _out_of_memory(exc: Exception) -> bool:
    return "out of memory" in str(exc)


def _first_line(exc: Exception) -> str:
    """The message of an engine exception without the stack trace the binding appends."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _parse_envelope(text: str) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    """The prelude's JSON envelope as typed values; ``ValueError`` if it is not one.

    The prelude writes this text itself, so a failure here is a bug of the bridge, not
    of the codec; it is still checked, because a value that reaches storage is parsed
    at the boundary, never trusted.
    """
    try:
        envelope = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"the engine returned text that is not JSON ({exc})") from None
    if not isinstance(envelope, dict):
        raise ValueError("the engine returned JSON that is not an envelope object")
    data, warnings, errors = envelope.get("data"), envelope.get("warnings"), envelope.get("errors")
    if not isinstance(data, dict):
        raise ValueError("the envelope's data is not an object")
    for name, items in (("warnings", warnings), ("errors", errors)):
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError(f"the envelope's {name} is not a list of strings")
    return data, tuple(cast("list[str]", warnings)), tuple(cast("list[str]", errors))


class JavaScriptCodec:
    """A TTN, ChirpStack v4 or ChirpStack v3 JavaScript codec file in its own QuickJS runtime.

    ``decode`` is thread-safe (calls to one codec are serialised) and runs in the
    caller's thread, blocking it for at most the time limit. ``close`` frees the
    runtime; a later ``decode`` loads the codec again. Whatever the codec does,
    ``decode`` raises nothing but ``CodecError`` and the constructor nothing but
    ``ConfigError``.

    Example::

        codec = JavaScriptCodec(Path("models/codecs/water-meter-pulse.js"))
        result = codec.decode(CodecInput(payload=bytes(8), f_port=1, received_at=now))
    """

    identity: CodecIdentity
    entry_point: EntryPoint

    def __init__(
        self,
        path: Path,
        *,
        timeout_s: float = 0.5,
        max_memory_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        try:
            raw = path.read_bytes()
            self._source = raw.decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"codec {path}: cannot read a UTF-8 JavaScript file: {exc}") from exc
        self.identity = CodecIdentity(name=path.name, digest=hashlib.sha256(raw).hexdigest())
        self._path = path
        self._timeout_s = timeout_s
        self._max_memory_bytes = max_memory_bytes
        self._lock = threading.Lock()
        self._context: quickjs.Context | None = None
        self._decode: Any = None
        try:
            self._load()
        except quickjs.JSException as exc:
            raise ConfigError(f"codec {path}: {self._load_failure(exc)}") from exc
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - the binding's own errors (TypeError...) end here
            raise ConfigError(f"codec {path}: the JavaScript bridge failed while loading it: {exc}") from exc

    def _load_failure(self, exc: Exception) -> str:
        text = str(exc).strip()
        if text.startswith("SyntaxError"):
            return f"JavaScript syntax error: {text}"
        if "interrupted" in text:
            return f"top-level code ran longer than {_LOAD_TIMEOUT_S:g} s"
        if _out_of_memory(exc):
            return f"top-level code used more than {self._max_memory_bytes} bytes"
        if isinstance(exc, quickjs.StackOverflow):
            return f"top-level code overflowed the JavaScript stack: {_first_line(exc)}"
        return f"top-level code failed: {text}"

    def _load(self) -> None:
        context = quickjs.Context()
        context.set_memory_limit(self._max_memory_bytes)
        context.set_time_limit(_LOAD_TIMEOUT_S)
        context.eval(_PRELUDE)
        # "void 0" makes the file's completion value undefined: the binding cannot read
        # some values a file may end with (a long concatenated string, a small BigInt).
        context.eval(self._source + "\n;void 0;")
        entry_point = context.eval(_BIND)
        if entry_point not in ("decodeUplink", "Decode"):
            raise ConfigError(
                f"codec {self._path}: defines neither decodeUplink(input) "
                "(The Things Network, ChirpStack v4) nor Decode(fPort, bytes, variables) "
                "(ChirpStack v3)"
            )
        context.set_time_limit(self._timeout_s)
        self.entry_point = cast("EntryPoint", entry_point)
        self._decode = context.eval(f"{_GLOBAL}.decode")
        self._context = context

    def decode(self, codec_input: CodecInput) -> DecodeResult:
        """Decode one payload; codec-reported ``errors`` are returned, not raised."""
        input_json = json.dumps(
            {
                "bytes": list(codec_input.payload),
                "fPort": codec_input.f_port,
                "recvTime": round(codec_input.received_at.timestamp() * 1000),
                "variables": dict(codec_input.variables),
            },
            separators=(",", ":"),
        )
        name = self.identity.name
        with self._lock:
            output = self._call(input_json)
        status, text = (output[:1], output[1:]) if isinstance(output, str) else ("", "")
        if status == "E":
            if text.startswith("InternalError: out of memory"):
                with self._lock:
                    self._discard()
                raise CodecError("codec_memory", f"{name}: used more than {self._max_memory_bytes} bytes")
            raise CodecError("codec_error", f"{name}: {text}")
        if status == "N":
            raise CodecError("codec_non_json", f"{name}: {text}")
        if status == "L":
            raise CodecError("codec_result_too_large", f"{name}: {text}")
        if status != "J":
            raise CodecError("codec_error", f"{name}: the JavaScript bridge returned {type(output).__name__}, not text")
        try:
            data, warnings, errors = _parse_envelope(text)
        except ValueError as exc:
            raise CodecError("codec_error", f"{name}: {exc}") from None
        return DecodeResult(data=data, codec=self.identity, warnings=warnings, errors=errors)

    def _call(self, input_json: str) -> object:
        """One call of the prelude's decode; under ``self._lock``. Raises only ``CodecError``."""
        name = self.identity.name
        try:
            if self._context is None:
                self._load()
            return cast("object", self._decode(input_json))
        except quickjs.JSException as exc:
            # Exceptions thrown by the codec are caught in JavaScript; what gets here
            # cannot be caught there: the time limit, the memory limit, a stack overflow.
            self._discard()
            if "interrupted" in str(exc):
                raise CodecError("codec_timeout", f"{name}: ran longer than {self._timeout_s:g} s") from exc
            if _out_of_memory(exc):
                raise CodecError("codec_memory", f"{name}: used more than {self._max_memory_bytes} bytes") from exc
            raise CodecError("codec_error", f"{name}: {_first_line(exc)}") from exc
        except ConfigError as exc:
            self._discard()
            raise CodecError("codec_error", f"{name}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - the binding's own errors end here, as dead letters
            # The prelude hands back flat strings only; if a future engine grows another
            # representation the binding cannot read, the uplink still becomes a dead
            # letter naming the cause instead of stopping the pipeline.
            self._discard()
            raise CodecError(
                "codec_error", f"{name}: the JavaScript bridge failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _discard(self) -> None:
        self._context = None
        self._decode = None

    def close(self) -> None:
        with self._lock:
            self._discard()


def load_javascript_codec(
    path: Path | str,
    *,
    timeout_s: float = 0.5,
    max_memory_bytes: int = 32 * 1024 * 1024,
) -> JavaScriptCodec:
    """Load a JavaScript codec file; raises ``ConfigError`` if it is unusable."""
    return JavaScriptCodec(Path(path), timeout_s=timeout_s, max_memory_bytes=max_memory_bytes)
