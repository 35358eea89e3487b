// Corpus codec written for this project: Object.assign, spread and defaults.
// uplink: fPort=1 hex=0105
// uplink: fPort=2 hex=0307
var DEFAULTS = { unit: "ppm", scale: 1, flags: { calibrated: false } };
function decodeUplink(input) {
  var cfg = Object.assign({}, DEFAULTS, input.fPort === 2 ? { scale: 10, unit: "ppb" } : {});
  var merged = { ...cfg, flags: { ...cfg.flags, calibrated: input.bytes[0] === 3 } };
  return { data: Object.assign(merged, { value: input.bytes[1] * merged.scale }) };
}
