// Corpus codec written for this project: Map and Set to deduplicate and group, converted
// to plain objects and arrays for the result.
// uplink: fPort=1 hex=0101020203030301
function decodeUplink(input) {
  var seen = new Set(input.bytes);
  var counts = new Map();
  input.bytes.forEach(function (b) { counts.set(b, (counts.get(b) || 0) + 1); });
  var grouped = {};
  counts.forEach(function (n, b) { grouped["v" + b] = n; });
  return { data: { unique: Array.from(seen).sort(), grouped: grouped, entries: Object.fromEntries([...counts].map(([k, v]) => [String(k), v])), size: seen.size } };
}
