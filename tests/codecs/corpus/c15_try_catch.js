// Corpus codec written for this project: try/catch/finally inside the codec, custom
// errors, and a thrown error that reaches the caller.
// uplink: fPort=1 hex=0102
// uplink: fPort=1 hex=ff
// uplink: fPort=7 hex=00
class FrameError extends Error {
  constructor(message) { super(message); this.name = "FrameError"; }
}

function parseFrame(bytes) {
  if (bytes[0] === 0xff) throw new FrameError("reserved type 0xff");
  return { a: bytes[0], b: bytes[1] };
}

function decodeUplink(input) {
  if (input.fPort === 7) throw new RangeError("fPort 7 is not decoded");
  var log = [];
  var frame;
  try {
    frame = parseFrame(input.bytes);
    log.push("parsed");
  } catch (e) {
    log.push(e.name + ": " + e.message, e instanceof FrameError, e instanceof Error);
    frame = null;
  } finally {
    log.push("finally");
  }
  return { data: { frame: frame, log: log } };
}
