// Corpus codec written for this project: TTN decodeUplink, signed 16-bit temperature.
// uplink: fPort=1 hex=0929
// uplink: fPort=1 hex=ff38
// uplink: fPort=2 hex=00
function decodeUplink(input) {
  if (input.bytes.length < 2) {
    return { errors: ["payload too short"] };
  }
  var raw = (input.bytes[0] << 8) | input.bytes[1];
  if (raw > 0x7fff) raw -= 0x10000;
  return { data: { temperature: raw / 100, port: input.fPort } };
}
