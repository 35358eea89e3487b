// Corpus codec written for this project: "use strict" file scope, Object.entries over
// the input, and input.bytes copied with Array.prototype.slice.call.
// uplink: fPort=9 hex=deadbeef variables={"a":"1","b":"two"}
"use strict";
function decodeUplink(input) {
  const bytes = Array.prototype.slice.call(input.bytes);
  const vars = Object.entries(input.variables).map(([k, v]) => k + "=" + v).sort();
  let thisInFunction = (function () { return this === undefined; })();
  return { data: { bytes, vars, strict: thisInFunction, keys: Object.keys(input).sort(), isArray: Array.isArray(input.bytes) } };
}
