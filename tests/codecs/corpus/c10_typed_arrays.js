// Corpus codec written for this project: typed arrays, subarray, from, map, and a typed
// array in the result (JSON has it as an object with index keys).
// uplink: fPort=1 hex=0102ff80
// uplink: fPort=1 hex=00
function decodeUplink(input) {
  var u8 = Uint8Array.from(input.bytes);
  var i8 = new Int8Array(u8.buffer);
  var u16 = new Uint16Array(2);
  u16[0] = 70000;
  u16[1] = -1;
  return {
    data: {
      signed: Array.from(i8),
      doubled: Array.from(u8.map(function (b) { return b * 2; })),
      tail: Array.from(u8.subarray(1)),
      wrapped: Array.from(u16),
      clamped: Array.from(new Uint8ClampedArray([300, -5, 1.5])),
      asObject: u8.slice(0, 2),
    },
  };
}
