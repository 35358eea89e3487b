// Corpus codec written for this project: bit operations on negative numbers, >>> and
// sign extension the way vendor codecs do it.
// uplink: fPort=1 hex=fffe8001
// uplink: fPort=1 hex=7fffffff
function decodeUplink(input) {
  var b = input.bytes;
  var i32 = (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
  return {
    data: {
      i32: i32,
      u32: i32 >>> 0,
      shifted: i32 >> 4,
      unsignedShift: i32 >>> 28,
      not: ~i32,
      xor: i32 ^ 0x5a5a5a5a,
      i16: (b[0] << 8 | b[1]) << 16 >> 16,
      negMask: -1 & 0xff,
      negShift: -16 >>> 0,
      hex: (i32 >>> 0).toString(16).padStart(8, "0"),
      bin: (b[3] & 0x0f).toString(2).padStart(4, "0"),
    },
  };
}
