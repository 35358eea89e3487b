// Street-light controller, written for this project (ChirpStack v4 `decodeUplink` form).
// 8 bytes: flags (bit 0 lamp on, bits 1-2 fault: 0 none, 1 lamp, 2 driver) | dimming in % |
// power in W (uint16 BE) | lifetime energy in Wh (uint32 BE).
const FAULTS = ["none", "lamp", "driver", "unknown"];

function decodeUplink(input) {
  const b = input.bytes;
  if (b.length !== 8) {
    return { errors: ["expected 8 bytes, got " + b.length] };
  }
  return {
    data: {
      lamp_on: (b[0] & 1) === 1,
      fault: FAULTS[(b[0] >> 1) & 3],
      dim_pct: b[1],
      power_w: (b[2] << 8) | b[3],
      energy_wh: ((b[4] << 24) >>> 0) + (b[5] << 16) + (b[6] << 8) + b[7]
    }
  };
}
