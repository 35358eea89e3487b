// Corpus codec written for this project: var hoisting and function declarations used
// before they appear.
// uplink: fPort=1 hex=0a14
// uplink: fPort=1 hex=
function decodeUplink(input) {
  result = compute(input.bytes);
  if (input.bytes.length) {
    var result;
    var extra = "set";
  }
  return { data: { result: result, extra: typeof extra, hoisted: typeof later, early: typeof earlyValue } };
  function compute(b) { return b.length ? b[0] * b[1] : -1; }
  function later() {}
  var earlyValue;
}
