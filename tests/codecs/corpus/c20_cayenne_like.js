// Corpus codec written for this project: a Cayenne-LPP-style channel/type loop.
// uplink: fPort=1 hex=03670110056700ff0668280173
// uplink: fPort=1 hex=0199
var TYPES = {
  0x67: { name: "temperature", size: 2, signed: true, divisor: 10 },
  0x68: { name: "humidity", size: 1, signed: false, divisor: 2 },
  0x73: { name: "pressure", size: 2, signed: false, divisor: 10 },
};

function decodeUplink(input) {
  var b = input.bytes, i = 0, data = {}, warnings = [];
  while (i + 2 <= b.length) {
    var channel = b[i], type = TYPES[b[i + 1]];
    if (!type) { warnings.push("unknown type " + b[i + 1] + " at " + i); break; }
    var v = 0;
    for (var k = 0; k < type.size; k++) v = (v << 8) | b[i + 2 + k];
    if (type.signed && v & (1 << (8 * type.size - 1))) v -= 1 << (8 * type.size);
    data[type.name + "_" + channel] = v / type.divisor;
    i += 2 + type.size;
  }
  return { data: data, warnings: warnings };
}
