// Corpus codec written for this project: a hand-written base64 encoder (no btoa in codec
// runtimes) applied to the payload.
// uplink: fPort=1 hex=4d616e
// uplink: fPort=1 hex=ff00ee11
var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
function b64(bytes) {
  var out = "";
  for (var i = 0; i < bytes.length; i += 3) {
    var n = (bytes[i] << 16) | ((bytes[i + 1] || 0) << 8) | (bytes[i + 2] || 0);
    out += ALPHABET[(n >> 18) & 63] + ALPHABET[(n >> 12) & 63];
    out += i + 1 < bytes.length ? ALPHABET[(n >> 6) & 63] : "=";
    out += i + 2 < bytes.length ? ALPHABET[n & 63] : "=";
  }
  return out;
}
function decodeUplink(input) {
  return { data: { base64: b64(input.bytes) } };
}
