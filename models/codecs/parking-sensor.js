// On-street parking sensor, written for this project (ChirpStack v3 `Decode` form).
// 2 bytes: status (bit 0 occupied) | battery in %.
function Decode(fPort, bytes, variables) {
  if (bytes.length < 2) {
    throw new Error("expected 2 bytes, got " + bytes.length);
  }
  return { occupied: (bytes[0] & 1) === 1, battery_pct: bytes[1] };
}
