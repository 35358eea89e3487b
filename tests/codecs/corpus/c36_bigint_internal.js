// Corpus codec written for this project: 64-bit counters read with BigInt and DataView,
// converted to Number and string for the result (JSON has no BigInt).
// uplink: fPort=1 hex=00000001000000020000000000000064
function decodeUplink(input) {
  var dv = new DataView(new Uint8Array(input.bytes).buffer);
  var big = dv.getBigUint64(0);
  var small = dv.getBigInt64(8);
  return { data: { counter: big.toString(), counterNumber: Number(big), small: Number(small), shifted: Number(big >> 32n), mixed: Number(BigInt.asIntN(8, 255n)) } };
}
