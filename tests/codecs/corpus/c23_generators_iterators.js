// Corpus codec written for this project: a generator yielding records, for...of, and a
// custom iterable.
// uplink: fPort=1 hex=010a020b030c
function* records(bytes) {
  for (let i = 0; i + 1 < bytes.length; i += 2) yield { id: bytes[i], value: bytes[i + 1] };
}

function decodeUplink(input) {
  const out = [];
  for (const r of records(input.bytes)) out.push(r);
  const iterable = { [Symbol.iterator]: function* () { yield 1; yield 2; } };
  return { data: { records: out, spread: [...iterable], ids: Array.from(records(input.bytes), (r) => r.id) } };
}
