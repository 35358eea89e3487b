// Pulse water meter, written for this project (TTN Device Repository codec format).
// fPort 1, 8 bytes: index in litres (uint32 BE) | flags (bit 0 leak, bit 1 tamper,
// bit 2 meter changed) | instantaneous flow in L/h (uint16 BE) | battery in %.
function decodeUplink(input) {
  var b = input.bytes;
  if (input.fPort !== 1) {
    return { errors: ["unexpected fPort " + input.fPort + " (expected 1)"] };
  }
  if (b.length !== 8) {
    return { errors: ["expected 8 bytes, got " + b.length] };
  }
  var index = ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
  var flags = b[4];
  var warnings = [];
  if (b[7] < 10) {
    warnings.push("battery low: " + b[7] + "%");
  }
  return {
    data: {
      index_l: index,
      leak: (flags & 1) === 1,
      tamper: (flags & 2) === 2,
      meter_changed: (flags & 4) === 4,
      instant_flow_lph: (b[5] << 8) + b[6],
      battery_pct: b[7]
    },
    warnings: warnings,
    errors: []
  };
}
