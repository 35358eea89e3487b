// Corpus codec written for this project: optional chaining and nullish coalescing over
// optional payload parts and variables.
// uplink: fPort=1 hex=01 variables={"calibration":"2"}
// uplink: fPort=1 hex=0102 variables={}
function decodeUplink(input) {
  var parts = { head: input.bytes[0], body: input.bytes.length > 1 ? { value: input.bytes[1] } : null };
  var cal = Number(input.variables?.calibration ?? "1");
  return { data: { value: (parts.body?.value ?? 0) * cal, missing: parts.body?.deep?.x ?? "none", cal: cal } };
}
