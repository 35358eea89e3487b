// Corpus codec written for this project: the older TTN v2 Decoder(bytes, port), wrapped
// the way the TTN Device Repository wraps legacy decoders.
// uplink: fPort=1 hex=0102030405
// uplink: fPort=3 hex=ff
function Decoder(bytes, port) {
  var decoded = {};
  if (port === 1) {
    decoded.sum = 0;
    for (var i = 0; i < bytes.length; i++) decoded.sum += bytes[i];
    decoded.count = bytes.length;
  } else {
    decoded.raw = bytes.slice();
  }
  return decoded;
}

function decodeUplink(input) {
  return { data: Decoder(input.bytes, input.fPort), warnings: [], errors: [] };
}
