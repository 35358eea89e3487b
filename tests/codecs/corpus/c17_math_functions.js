// Corpus codec written for this project: Math functions as sensor formulas use them,
// rounded as vendor codecs round them (engines may differ in the last bit of sin/log/exp).
// uplink: fPort=1 hex=03e8
// uplink: fPort=1 hex=0001
function round(x, digits) {
  var f = Math.pow(10, digits);
  return Math.round(x * f) / f;
}

function decodeUplink(input) {
  var raw = (input.bytes[0] << 8) | input.bytes[1];
  var ratio = raw / 1023;
  return {
    data: {
      sqrt: Math.sqrt(raw),
      log: round(Math.log(raw), 6),
      log10: round(Math.log10(raw), 6),
      exp: round(Math.exp(ratio), 6),
      steinhart: round(1 / (0.001129148 + 0.000234125 * Math.log(raw * 10) + 0.0000000876741 * Math.pow(Math.log(raw * 10), 3)) - 273.15, 3),
      sin: round(Math.sin(ratio), 6),
      atan2: round(Math.atan2(raw, 100), 6),
      hypot: round(Math.hypot(3, 4, raw), 6),
      minmax: [Math.min(raw, 500), Math.max(raw, 500)],
      trunc: [Math.trunc(-4.7), Math.floor(-4.7), Math.ceil(-4.2), Math.sign(-3)],
      fixed: Number((raw / 3).toFixed(2)),
      clz: Math.clz32(raw),
      imul: Math.imul(raw, 0x7fffffff),
    },
  };
}
