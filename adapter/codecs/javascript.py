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
  the codec runs, from intrinsics captured at that time and reading own enumerable
  keys only: codecs overwrite globals and add enumerable members to
  ``Object.prototype``. NaN, infinities, ``undefined``, functions, symbols, BigInts,
  lone surrogates and cycles are rejected with the path of the offending value;
  ``Date`` objects are converted to ISO 8601 strings, as ``JSON.stringify`` would.
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
from adapter.exceptions import CodecError, ConfigError

__all__ = ["JavaScriptCodec", "load_javascript_codec"]

EntryPoint = Literal["decodeUplink", "Decode"]

#: Time allowed to compile and run a codec file's top-level code (large vendor files
#: take far longer to load than to decode one payload).
_LOAD_TIMEOUT_S = 5.0

#: Where the prelude publishes its ``bind`` and ``decode`` functions.
_GLOBAL = "__ngsildAdapter"

_PRELUDE = r"""
(function (global) {
  "use strict";
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const keys = Object.keys;
  const isArray = Array.isArray;
  const isFinite = Number.isFinite;
  const hasOwn = Object.hasOwn;
  const getPrototypeOf = Object.getPrototypeOf;
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  const apply = Reflect.apply;
  const DateCtor = Date;
  const datePrototype = Date.prototype;
  const dateGetTime = Date.prototype.getTime;
  const dateToISOString = Date.prototype.toISOString;
  const isWellFormed = String.prototype.isWellFormed;
  const stringSlice = String.prototype.slice;
  const StringCtor = String;
  const MAX_LOGS = 20;
  const MAX_LOG_LENGTH = 500;

  const NON_JSON = {};
  let nonJsonDetail = "";
  let logs = [];
  let entry;
  let entryName = "";

  function fail(detail) {
    nonJsonDetail = detail;
    throw NON_JSON;
  }

  function kind(v) {
    const t = typeof v;
    if (t === "undefined") return "undefined";
    if (t !== "object") return "a " + t;
    if (v === null) return "null";
    if (isArray(v)) return "an array";
    return getPrototypeOf(v) === datePrototype ? "a Date" : "an object";
  }

  function own(obj, key) {
    return hasOwn(obj, key) ? obj[key] : undefined;
  }

  function toJson(v, path, ancestors, depth) {
    switch (typeof v) {
      case "string":
        if (!apply(isWellFormed, v, [])) fail(path + " is a string with a lone surrogate");
        return stringify(v);
      case "number":
        if (!isFinite(v)) {
          fail(path + " is " + (v !== v ? "NaN" : (v > 0 ? "Infinity" : "-Infinity")));
        }
        return stringify(v);
      case "boolean":
        return v ? "true" : "false";
      case "undefined":
        fail(path + " is undefined");
      case "function":
        fail(path + " is a function");
      case "symbol":
        fail(path + " is a symbol");
      case "bigint":
        fail(path + " is a BigInt");
    }
    if (v === null) return "null";
    for (let i = 0; i < depth; i++) {
      if (ancestors[i] === v) fail(path + " is a cyclic reference");
    }
    ancestors[depth] = v;
    if (isArray(v)) {
      let out = "[";
      const length = v.length;
      for (let i = 0; i < length; i++) {
        if (i) out += ",";
        out += toJson(v[i], path + "[" + i + "]", ancestors, depth + 1);
      }
      return out + "]";
    }
    if (getPrototypeOf(v) === datePrototype) {
      const time = apply(dateGetTime, v, []);
      if (time !== time) fail(path + " is an invalid Date");
      return stringify(apply(dateToISOString, v, []));
    }
    const names = keys(v);
    let out = "{";
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      if (i) out += ",";
      out += stringify(name) + ":" + toJson(v[name], path + "." + name, ancestors, depth + 1);
    }
    return out + "}";
  }

  function stringList(list, path, extra) {
    if (list !== undefined && list !== null && !isArray(list)) {
      fail(path + " is " + kind(list) + ", not an array of strings");
    }
    let out = "[";
    const length = list ? list.length : 0;
    for (let i = 0; i < length; i++) {
      const item = list[i];
      if (typeof item !== "string") fail(path + "[" + i + "] is " + kind(item) + ", not a string");
      out += (i ? "," : "") + toJson(item, path + "[" + i + "]", [], 0);
    }
    for (let i = 0; i < extra.length; i++) {
      out += (out.length > 1 ? "," : "") + stringify(extra[i]);
    }
    return out + "]";
  }

  function envelope(result) {
    let data = result;
    let warnings;
    let errors;
    if (entryName === "decodeUplink") {
      if (result === null || typeof result !== "object" || isArray(result)) {
        fail("result is " + kind(result) + ", not an object");
      }
      data = own(result, "data");
      warnings = own(result, "warnings");
      errors = own(result, "errors");
    }
    const errorsJson = stringList(errors, "errors", []);
    if ((data === undefined || data === null) && errorsJson !== "[]") data = {};
    if (data === null || typeof data !== "object" || isArray(data)
        || getPrototypeOf(data) === datePrototype) {
      fail("data is " + kind(data) + ", not a JSON object");
    }
    return '{"data":' + toJson(data, "data", [], 0)
      + ',"warnings":' + stringList(warnings, "warnings", logs)
      + ',"errors":' + errorsJson + "}";
  }

  function errorMessage(e) {
    try {
      if (e !== null && typeof e === "object" && typeof e.message === "string") {
        return (typeof e.name === "string" && e.name ? e.name + ": " : "") + e.message;
      }
      return StringCtor(e);
    } catch (_) {
      return "(a value that cannot be printed was thrown)";
    }
  }

  function format(value) {
    if (typeof value === "string") return value;
    try {
      const text = stringify(value);
      return text === undefined ? StringCtor(value) : text;
    } catch (_) {
      try { return StringCtor(value); } catch (_) { return "?"; }
    }
  }

  function logger(level) {
    return function () {
      if (logs.length >= MAX_LOGS) return;
      let line = "console." + level + ":";
      for (let i = 0; i < arguments.length; i++) line += " " + format(arguments[i]);
      logs[logs.length] = apply(stringSlice, line, [0, MAX_LOG_LENGTH]);
    };
  }

  function bind(decodeUplink, Decode) {
    let exported;
    try {
      exported = global.module && global.module.exports;
    } catch (_) {}
    function pick(name, declared) {
      if (typeof declared === "function") return declared;
      try {
        if (exported && typeof exported[name] === "function") return exported[name];
      } catch (_) {}
      return undefined;
    }
    entry = pick("decodeUplink", decodeUplink);
    entryName = "decodeUplink";
    if (entry === undefined) {
      entry = pick("Decode", Decode);
      entryName = entry === undefined ? "" : "Decode";
    }
    return entryName;
  }

  function decode(inputJson) {
    const input = parse(inputJson);
    input.recvTime = new DateCtor(input.recvTime);
    logs = [];
    let result;
    try {
      result = entryName === "Decode"
        ? entry(input.fPort, input.bytes, input.variables)
        : entry(input);
    } catch (e) {
      return "E" + errorMessage(e);
    }
    try {
      return "J" + envelope(result);
    } catch (e) {
      return e === NON_JSON ? "N" + nonJsonDetail : "E" + errorMessage(e);
    }
  }

  const moduleShim = { exports: {} };
  global.module = moduleShim;
  global.exports = moduleShim.exports;
  global.global = global;
  global.console = {
    log: logger("log"), info: logger("info"), debug: logger("debug"),
    warn: logger("warn"), error: logger("error"), trace: logger("trace"),
  };
  defineProperty(global, "__ngsildAdapter", {
    value: freeze({ bind: bind, decode: decode }),
    writable: false, enumerable: false, configurable: false,
  });
})(globalThis);
"""

_BIND = (
    f"{_GLOBAL}.bind("
    "typeof decodeUplink === 'undefined' ? undefined : decodeUplink, "
    "typeof Decode === 'undefined' ? undefined : Decode)"
)


def _out_of_memory(exc: Exception) -> bool:
    return "out of memory" in str(exc)


class JavaScriptCodec:
    """A TTN, ChirpStack v4 or ChirpStack v3 JavaScript codec file in its own QuickJS runtime.

    ``decode`` is thread-safe (calls to one codec are serialised) and runs in the
    caller's thread, blocking it for at most the time limit. ``close`` frees the
    runtime; a later ``decode`` loads the codec again.
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

    def _load_failure(self, exc: Exception) -> str:
        text = str(exc).strip()
        if text.startswith("SyntaxError"):
            return f"JavaScript syntax error: {text}"
        if "interrupted" in text:
            return f"top-level code ran longer than {_LOAD_TIMEOUT_S:g} s"
        if _out_of_memory(exc):
            return f"top-level code used more than {self._max_memory_bytes} bytes"
        return f"top-level code failed: {text}"

    def _load(self) -> None:
        context = quickjs.Context()
        context.set_memory_limit(self._max_memory_bytes)
        context.set_time_limit(_LOAD_TIMEOUT_S)
        context.eval(_PRELUDE)
        context.eval(self._source)
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
            try:
                if self._context is None:
                    self._load()
                # The prelude's decode() always returns a string.
                output = cast("str", self._decode(input_json))
            except quickjs.JSException as exc:
                # Exceptions thrown by the codec are caught in JavaScript; what gets here
                # cannot be caught there: the time limit, the memory limit, a stack overflow.
                self._discard()
                if "interrupted" in str(exc):
                    raise CodecError("codec_timeout", f"{name}: ran longer than {self._timeout_s:g} s") from exc
                if _out_of_memory(exc):
                    raise CodecError("codec_memory", f"{name}: used more than {self._max_memory_bytes} bytes") from exc
                raise CodecError("codec_error", f"{name}: {str(exc).strip()}") from exc
            except ConfigError as exc:
                self._discard()
                raise CodecError("codec_error", f"{name}: {exc}") from exc
        status, text = output[:1], output[1:]
        if status == "E":
            if text.startswith("InternalError: out of memory"):
                with self._lock:
                    self._discard()
                raise CodecError("codec_memory", f"{name}: used more than {self._max_memory_bytes} bytes")
            raise CodecError("codec_error", f"{name}: {text}")
        if status == "N":
            raise CodecError("codec_non_json", f"{name}: {text}")
        result = json.loads(text)
        return DecodeResult(
            data=result["data"],
            codec=self.identity,
            warnings=tuple(result["warnings"]),
            errors=tuple(result["errors"]),
        )

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
