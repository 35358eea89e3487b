// Corpus codec written for this project: one decoder per fPort in a lookup table, and
// errors for unknown ports.
// uplink: fPort=1 hex=0a
// uplink: fPort=2 hex=0b0c
// uplink: fPort=3 hex=00
var decoders = {
  1: function (b) { return { battery: b[0] / 10 }; },
  2: function (b) { return { config: { interval: b[0], mode: b[1] } }; },
};
function decodeUplink(input) {
  var d = decoders[input.fPort];
  if (!d) return { errors: ["unknown fPort " + input.fPort], warnings: ["check device firmware"] };
  return { data: d(input.bytes) };
}
