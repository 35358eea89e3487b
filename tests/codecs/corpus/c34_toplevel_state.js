// Corpus codec written for this project: top-level const and let keeping state between
// uplinks (the reference engine runs the cases in the same order).
// uplink: fPort=1 hex=0a
// uplink: fPort=1 hex=14
// uplink: fPort=1 hex=1e
const history = [];
let calls = 0;
function decodeUplink(input) {
  calls += 1;
  history.push(input.bytes[0]);
  const mean = history.reduce((a, b) => a + b, 0) / history.length;
  return { data: { calls, mean, last: history.slice(-2) } };
}
