// Corpus codec written for this project: DataView over an ArrayBuffer, float32 and
// signed/unsigned integers in both byte orders.
// uplink: fPort=1 hex=41bc0000fff6ffffff9c01020304
// uplink: fPort=1 hex=c2c80000000a0000006400000000
function decodeUplink(input) {
  var buf = new ArrayBuffer(input.bytes.length);
  var u8 = new Uint8Array(buf);
  u8.set(input.bytes);
  var dv = new DataView(buf);
  return {
    data: {
      f32: dv.getFloat32(0),
      i16be: dv.getInt16(4),
      i16le: dv.getInt16(4, true),
      i32: dv.getInt32(6),
      u32le: dv.getUint32(10, true),
    },
  };
}
