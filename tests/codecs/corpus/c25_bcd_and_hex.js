// Corpus codec written for this project: BCD meter serials and hex strings, as water and
// energy meters send them.
// uplink: fPort=1 hex=12345678a0
// uplink: fPort=1 hex=99000001
function bcd(byte) { return (byte >> 4) * 10 + (byte & 0x0f); }
function decodeUplink(input) {
  var serial = "";
  var value = 0;
  for (var i = 0; i < 4; i++) {
    serial += ("0" + input.bytes[i].toString(16)).slice(-2);
    value = value * 100 + bcd(input.bytes[i]);
  }
  var hex = input.bytes.map(function (b) { return b.toString(16).toUpperCase().padStart(2, "0"); }).join(" ");
  return { data: { serial: serial, bcdValue: value, hex: hex, hasFlags: input.bytes.length > 4 } };
}
