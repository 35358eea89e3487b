// The reference engine for the codec corpus: runs every corpus codec in Node.js (V8),
// each in its own vm context (fresh globals, like the adapter's QuickJS runtime per
// file), with the same input and the plain JSON.stringify of what the entry point
// returns. Written for this project; read by tests/codecs/test_corpus.py.
//
// stdin:  {"codecs": [{"name", "source", "cases": [{"bytes", "fPort", "recvTime", "variables"}]}]}
// stdout: {"<name>": [{"ok": {"data", "warnings", "errors"}} | {"thrown": "Name: message"} | {"load": "..."}]}
"use strict";
const fs = require("fs");
const vm = require("vm");

const RUNNER = `
(function (global) {
  const stringify = JSON.stringify, parse = JSON.parse, DateCtor = Date;
  global.module = { exports: {} };
  global.exports = global.module.exports;
  global.global = global;
  const quiet = function () {};
  global.console = { log: quiet, info: quiet, debug: quiet, warn: quiet, error: quiet, trace: quiet };
  Object.defineProperty(global, "__reference", { enumerable: false, value: function (entryName, entry, inputJson) {
    const input = parse(inputJson);
    input.recvTime = new DateCtor(input.recvTime);
    try {
      const result = entryName === "Decode" ? entry(input.fPort, input.bytes, input.variables) : entry(input);
      let data = result, warnings = [], errors = [];
      if (entryName === "decodeUplink") {
        data = result.data;
        warnings = result.warnings || [];
        errors = result.errors || [];
        if ((data === undefined || data === null) && errors.length) data = {};
      }
      return stringify({ ok: { data: data, warnings: warnings, errors: errors } });
    } catch (e) {
      const message = e !== null && typeof e === "object" && typeof e.message === "string"
        ? (e.name ? e.name + ": " : "") + e.message : String(e);
      return stringify({ thrown: message });
    }
  } });
})(globalThis);
`;

// Evaluated in the codec's global scope, so that top-level const/let functions count.
const ENTRY = `(function (declared) {
  const exported = globalThis.module && globalThis.module.exports;
  for (const name of ["decodeUplink", "Decode"]) {
    if (typeof declared[name] === "function") return name;
    if (exported && typeof exported[name] === "function") return name;
  }
  return "";
})({ decodeUplink: typeof decodeUplink === "undefined" ? undefined : decodeUplink,
     Decode: typeof Decode === "undefined" ? undefined : Decode })`;

function entryExpression(name) {
  return "(typeof " + name + " === 'function' ? " + name + " : module.exports." + name + ")";
}

const request = JSON.parse(fs.readFileSync(0, "utf8"));
const answer = {};
for (const codec of request.codecs) {
  const context = vm.createContext({});
  const outcomes = [];
  try {
    vm.runInContext(RUNNER, context);
    vm.runInContext(codec.source, context, { filename: codec.name, timeout: 5000 });
    const entryName = vm.runInContext(ENTRY, context);
    if (!entryName) throw new Error("no entry point");
    for (const input of codec.cases) {
      const call = "__reference(" + JSON.stringify(entryName) + ", " + entryExpression(entryName) + ", "
        + JSON.stringify(JSON.stringify(input)) + ")";
      outcomes.push(JSON.parse(vm.runInContext(call, context, { timeout: 5000 })));
    }
  } catch (e) {
    outcomes.push({ load: String(e && e.stack || e) });
  }
  answer[codec.name] = outcomes;
}
process.stdout.write(JSON.stringify(answer));
