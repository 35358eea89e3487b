// Corpus codec written for this project: ES2015 classes, getters, static members,
// inheritance and private fields.
// uplink: fPort=2 hex=0064c8ff
// uplink: fPort=2 hex=000000
class Frame {
  #raw;
  constructor(bytes) { this.#raw = bytes; this.kind = "frame"; }
  get length() { return this.#raw.length; }
  byte(i) { return this.#raw[i]; }
  static of(bytes) { return bytes.length > 3 ? new LongFrame(bytes) : new Frame(bytes); }
}

class LongFrame extends Frame {
  constructor(bytes) { super(bytes); this.kind = "long"; }
  get last() { return this.byte(this.length - 1); }
}

function decodeUplink(input) {
  const frame = Frame.of(input.bytes);
  const data = { kind: frame.kind, length: frame.length, first: frame.byte(0) };
  if (frame instanceof LongFrame) data.last = frame.last;
  data.instance = frame;  // own enumerable fields only: {"kind": ...}
  return { data };
}
