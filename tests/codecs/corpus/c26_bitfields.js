// Corpus codec written for this project: status bitfields decoded with a table.
// uplink: fPort=1 hex=a5
// uplink: fPort=1 hex=00
// uplink: fPort=1 hex=ff
var FLAGS = ["battery_low", "tamper", "leak", "reverse_flow", "frozen", "open", "alarm", "reset"];
function decodeUplink(input) {
  var status = input.bytes[0];
  var flags = {};
  var active = [];
  for (var bit = 0; bit < 8; bit++) {
    var on = (status & (1 << bit)) !== 0;
    flags[FLAGS[bit]] = on;
    if (on) active.push(FLAGS[bit]);
  }
  return { data: { flags: flags, active: active, nibbles: [status >> 4, status & 0xf] } };
}
