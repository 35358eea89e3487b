// Corpus codec written for this project: closures, a reader object over the payload.
// uplink: fPort=1 hex=01e20a0b0c0d
// uplink: fPort=1 hex=7f
function makeReader(bytes) {
  var pos = 0;
  return {
    u8: function () { return bytes[pos++]; },
    u16: function () { var v = (bytes[pos] << 8) | bytes[pos + 1]; pos += 2; return v; },
    left: function () { return bytes.length - pos; },
  };
}

function decodeUplink(input) {
  var r = makeReader(input.bytes);
  var out = { version: r.u8() };
  var fields = [];
  while (r.left() >= 2) fields.push(r.u16());
  out.fields = fields;
  out.rest = r.left();
  var counter = (function () { var n = 0; return function () { return ++n; }; })();
  counter(); counter();
  out.calls = counter();
  return { data: out };
}
