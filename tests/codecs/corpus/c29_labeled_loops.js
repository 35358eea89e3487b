// Corpus codec written for this project: labeled break/continue, do-while, comma and
// conditional operators.
// uplink: fPort=1 hex=0102030004050600
function decodeUplink(input) {
  var groups = [], current = [], i = 0;
  outer: do {
    for (; i < input.bytes.length; i++) {
      if (input.bytes[i] === 0) { groups.push(current); current = []; i++; continue outer; }
      if (groups.length > 5) break outer;
      current.push(input.bytes[i]);
    }
    break;
  } while (true);
  var x = (1, 2, 3);
  return { data: { groups: groups, comma: x, parity: groups.length % 2 ? "odd" : "even" } };
}
