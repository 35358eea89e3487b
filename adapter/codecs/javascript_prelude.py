"""The JavaScript that runs in each codec's QuickJS context before the codec file.

It defines the only two functions Python calls (``bind`` and ``decode``) and the walker
that turns a codec's result into JSON text. Everything it needs is captured from the
intrinsics *before* the codec runs, because codecs overwrite globals and add enumerable
members to built-in prototypes.

Why every value handed back to Python is a flat string: the ``quickjs-ng`` binding
converts a JavaScript value by switching on its QuickJS tag, and knows ``JS_TAG_STRING``
but not ``JS_TAG_STRING_ROPE`` (-6), the lazy concatenation QuickJS-NG returns for
``a + b`` once the right operand is longer than 512 characters or the left one longer
than 8,192. The binding then raises ``TypeError: Unknown quickjs tag: -6``. A string
produced by ``Array.prototype.join`` is always flat (it is written into one buffer), so
every text Python reads goes through ``flat()``. The same binding does not know the
short BigInt tag (7) either, hence the ``void 0`` after the codec file in the loader.

Limits are checked while the text is built, so a huge or deeply nested result fails
fast with the path where it went over: ``__MAX_DEPTH__`` levels of objects and arrays,
``__MAX_CHARS__`` characters of JSON.

``decode`` answers one string whose first character says what it is: ``J`` JSON
envelope ``{"data", "warnings", "errors"}``, ``E`` the codec threw (the message
follows), ``N`` the result is not JSON (the path and why follow), ``L`` the result is
over a limit.
"""

from __future__ import annotations

__all__ = ["GLOBAL_NAME", "prelude"]

#: Where the prelude publishes its ``bind`` and ``decode`` functions.
GLOBAL_NAME = "__ngsildAdapter"

_SOURCE = r"""
(function (global) {
  "use strict";
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const keys = Object.keys;
  const isArray = Array.isArray;
  const isFinite = Number.isFinite;
  const hasOwn = Object.hasOwn;
  const getPrototypeOf = Object.getPrototypeOf;
  const setPrototypeOf = Object.setPrototypeOf;
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  const apply = Reflect.apply;
  const arrayJoin = Array.prototype.join;
  const DateCtor = Date;
  const datePrototype = Date.prototype;
  const dateGetTime = Date.prototype.getTime;
  const dateToISOString = Date.prototype.toISOString;
  const isWellFormed = String.prototype.isWellFormed;
  const stringSlice = String.prototype.slice;
  const StringCtor = String;
  const MAX_LOGS = 20;
  const MAX_LOG_LENGTH = 500;
  const MAX_MESSAGE_LENGTH = 1000;
  const MAX_DEPTH = __MAX_DEPTH__;
  const MAX_CHARS = __MAX_CHARS__;

  const NON_JSON = {};
  const OVER_LIMIT = {};
  let failDetail = "";
  let logs = [];
  let entry;
  let entryName = "";

  // A list that no setter or getter on Array.prototype can reach.
  function list() {
    const out = [];
    setPrototypeOf(out, null);
    return out;
  }

  // A flat copy of s (see the module docstring): join writes into a single buffer.
  function flat(s) {
    return apply(arrayJoin, [s], [""]);
  }

  function clip(s, length) {
    return s.length > length ? apply(stringSlice, s, [0, length]) + "..." : s;
  }

  function fail(detail) {
    failDetail = clip(detail, MAX_MESSAGE_LENGTH);
    throw NON_JSON;
  }

  function overLimit(detail) {
    failDetail = clip(detail, MAX_MESSAGE_LENGTH);
    throw OVER_LIMIT;
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

  // Appends JSON text to out.parts, keeping out.size and the limits.
  function emit(out, text, path) {
    out.size += text.length;
    if (out.size > MAX_CHARS) {
      overLimit("result is longer than " + MAX_CHARS + " characters of JSON (at " + path + ")");
    }
    out.parts[out.parts.length] = text;
  }

  function toJson(v, path, ancestors, depth, out) {
    switch (typeof v) {
      case "string":
        if (!apply(isWellFormed, v, [])) fail(path + " is a string with a lone surrogate");
        return emit(out, stringify(v), path);
      case "number":
        if (!isFinite(v)) {
          fail(path + " is " + (v !== v ? "NaN" : (v > 0 ? "Infinity" : "-Infinity")));
        }
        return emit(out, stringify(v), path);
      case "boolean":
        return emit(out, v ? "true" : "false", path);
      case "undefined":
        fail(path + " is undefined");
      case "function":
        fail(path + " is a function");
      case "symbol":
        fail(path + " is a symbol");
      case "bigint":
        fail(path + " is a BigInt");
    }
    if (v === null) return emit(out, "null", path);
    for (let i = 0; i < depth; i++) {
      if (ancestors[i] === v) fail(path + " is a cyclic reference");
    }
    if (depth >= MAX_DEPTH) overLimit(path + " nests deeper than " + MAX_DEPTH + " levels");
    ancestors[depth] = v;
    if (isArray(v)) {
      emit(out, "[", path);
      const length = v.length;
      for (let i = 0; i < length; i++) {
        if (i) emit(out, ",", path);
        toJson(v[i], path + "[" + i + "]", ancestors, depth + 1, out);
      }
      return emit(out, "]", path);
    }
    if (getPrototypeOf(v) === datePrototype) {
      const time = apply(dateGetTime, v, []);
      if (time !== time) fail(path + " is an invalid Date");
      return emit(out, stringify(apply(dateToISOString, v, [])), path);
    }
    const names = keys(v);
    emit(out, "{", path);
    let written = 0;
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      const member = v[name];
      // A member left undefined is a reading the codec did not produce (``x = found?.value``):
      // left out, as JSON.stringify and the network servers' codec runners do.
      if (member === undefined) continue;
      if (!apply(isWellFormed, name, [])) fail(path + " has a member name with a lone surrogate");
      if (written++) emit(out, ",", path);
      emit(out, stringify(name) + ":", path);
      toJson(member, path + "." + name, ancestors, depth + 1, out);
    }
    return emit(out, "}", path);
  }

  function stringList(list, path, extra, out) {
    if (list !== undefined && list !== null && !isArray(list)) {
      fail(path + " is " + kind(list) + ", not an array of strings");
    }
    emit(out, "[", path);
    let count = 0;
    const length = list ? list.length : 0;
    for (let i = 0; i < length; i++) {
      const item = list[i];
      if (typeof item !== "string") fail(path + "[" + i + "] is " + kind(item) + ", not a string");
      if (count++) emit(out, ",", path);
      toJson(item, path + "[" + i + "]", [], 0, out);
    }
    for (let i = 0; i < extra.length; i++) {
      if (count++) emit(out, ",", path);
      emit(out, stringify(extra[i]), path);
    }
    emit(out, "]", path);
    return count;
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
    const out = { parts: list(), size: 0 };
    emit(out, '{"errors":', "errors");
    const hasErrors = stringList(errors, "errors", [], out) > 0;
    if ((data === undefined || data === null) && hasErrors) data = {};
    if (data === null || typeof data !== "object" || isArray(data)
        || getPrototypeOf(data) === datePrototype) {
      fail("data is " + kind(data) + ", not a JSON object");
    }
    emit(out, ',"warnings":', "warnings");
    stringList(warnings, "warnings", logs, out);
    emit(out, ',"data":', "data");
    toJson(data, "data", list(), 0, out);
    emit(out, "}", "data");
    return apply(arrayJoin, out.parts, [""]);
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
      for (let i = 0; i < arguments.length && line.length < MAX_LOG_LENGTH; i++) {
        line += " " + format(arguments[i]);
      }
      logs[logs.length] = flat(apply(stringSlice, line, [0, MAX_LOG_LENGTH]));
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
    logs = list();
    let result;
    try {
      result = entryName === "Decode"
        ? entry(input.fPort, input.bytes, input.variables)
        : entry(input);
    } catch (e) {
      return flat("E" + clip(errorMessage(e), MAX_MESSAGE_LENGTH));
    }
    try {
      return flat("J" + envelope(result));
    } catch (e) {
      if (e === NON_JSON) return flat("N" + failDetail);
      if (e === OVER_LIMIT) return flat("L" + failDetail);
      return flat("E" + clip(errorMessage(e), MAX_MESSAGE_LENGTH));
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
  defineProperty(global, "__GLOBAL_NAME__", {
    value: freeze({ bind: bind, decode: decode }),
    writable: false, enumerable: false, configurable: false,
  });
})(globalThis);
void 0;
"""


def prelude(*, max_depth: int, max_chars: int) -> str:
    """The prelude's source with its limits filled in (both positive integers)."""
    if max_depth < 1 or max_chars < 1:
        raise ValueError("the result limits must be positive")
    return (
        _SOURCE.replace("__MAX_DEPTH__", str(int(max_depth)))
        .replace("__MAX_CHARS__", str(int(max_chars)))
        .replace("__GLOBAL_NAME__", GLOBAL_NAME)
    )
