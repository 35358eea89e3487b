// Corpus codec written for this project: a codec that exports its entry point through
// module.exports (Node style) instead of a global function.
// uplink: fPort=1 hex=2a
var helpers = {
  scale: function (v) { return v * 0.5; },
};
module.exports = {
  decodeUplink: function (input) {
    return { data: { half: helpers.scale(input.bytes[0]), hasModule: typeof module === "object" } };
  },
};
