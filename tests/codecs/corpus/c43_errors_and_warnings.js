// Corpus codec written for this project: TTN results with data and warnings, errors
// without data, and a thrown TypeError raised by the codec itself.
// uplink: fPort=1 hex=0101
// uplink: fPort=1 hex=02
// uplink: fPort=1 hex=03
function decodeUplink(input) {
  switch (input.bytes[0]) {
    case 1: return { data: { ok: true }, warnings: ["battery " + input.bytes[1] + "%"] };
    case 2: return { errors: ["frame type 2 needs 4 bytes", "checksum missing"] };
    default: throw new TypeError("frame type " + input.bytes[0] + " is not supported");
  }
}
