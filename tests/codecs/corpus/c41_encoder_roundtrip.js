// Corpus codec written for this project: decodeUplink next to encodeDownlink and
// decodeDownlink, as TTN Device Repository codecs ship them.
// uplink: fPort=1 hex=0164
function encodeDownlink(input) {
  return { bytes: [input.data.mode === "eco" ? 1 : 0, input.data.interval & 0xff], fPort: 1 };
}
function decodeDownlink(input) {
  return { data: { mode: input.bytes[0] ? "eco" : "normal", interval: input.bytes[1] } };
}
function decodeUplink(input) {
  var asDownlink = decodeDownlink({ bytes: input.bytes });
  var back = encodeDownlink({ data: asDownlink.data });
  return { data: { decoded: asDownlink.data, reencoded: back.bytes, same: back.bytes.join() === input.bytes.join() } };
}
