// Corpus codec written for this project: array length tricks, fill, splice, indexOf,
// includes, Array(n) filled before use (no holes reach the result).
// uplink: fPort=1 hex=0302010405
function decodeUplink(input) {
  var b = input.bytes.slice();
  var filled = new Array(4).fill(0);
  filled[1] = b[0];
  var removed = b.splice(1, 2);
  var truncated = [1, 2, 3, 4, 5];
  truncated.length = 2;
  return { data: { filled: filled, removed: removed, rest: b, truncated: truncated, idx: b.indexOf(4), has: b.includes(5), last: b.lastIndexOf(3) } };
}
