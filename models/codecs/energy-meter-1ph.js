// Single-phase electricity sub-meter, written for this project (TTN Device Repository format).
// 11 bytes: imported active energy in Wh (uint32 BE) | active power in W (uint16 BE) |
// voltage in 0.1 V (uint16 BE) | frequency in 0.01 Hz (uint16 BE) | flags (bit 0 meter changed).
function u16(b, i) { return (b[i] << 8) | b[i + 1]; }

function decodeUplink(input) {
  var b = input.bytes;
  if (b.length !== 11) {
    return { data: {}, warnings: [], errors: ["expected 11 bytes, got " + b.length] };
  }
  return {
    data: {
      energy_import_wh: ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3],
      power_w: u16(b, 4),
      voltage_v: u16(b, 6) / 10,
      frequency_hz: u16(b, 8) / 100,
      meter_changed: (b[10] & 1) === 1
    },
    warnings: [],
    errors: []
  };
}
