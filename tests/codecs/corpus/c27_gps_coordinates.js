// Corpus codec written for this project: GPS coordinates as signed 24-bit integers.
// uplink: fPort=2 hex=496fa2fee3b20064
// uplink: fPort=2 hex=b6905e011c4eff9c
function s24(b, i) {
  var v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
  return v & 0x800000 ? v - 0x1000000 : v;
}
function decodeUplink(input) {
  var b = input.bytes;
  var alt = (b[6] << 8 | b[7]) << 16 >> 16;
  return { data: { latitude: s24(b, 0) / 100000, longitude: s24(b, 3) / 100000, altitude: alt } };
}
