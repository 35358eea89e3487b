// Corpus codec written for this project: regular expressions over a text payload
// (named groups, global matching, replace with a function, lookbehind, sticky).
// uplink: fPort=1 hex=543d32312e353b483d34353b503d31303133
// uplink: fPort=1 hex=6e6f2d6d61746368
function decodeUplink(input) {
  var text = String.fromCharCode.apply(null, input.bytes);
  var pairs = {};
  var re = /([A-Z])=(-?\d+(?:\.\d+)?)/g;
  var m;
  while ((m = re.exec(text)) !== null) pairs[m[1]] = parseFloat(m[2]);
  var named = /T=(?<t>[\d.]+)/.exec(text);
  var sticky = /[A-Z]/y;
  return {
    data: {
      pairs: pairs,
      named: named ? named.groups.t : null,
      upper: text.replace(/[a-z]/g, function (c) { return c.toUpperCase(); }),
      afterEquals: text.match(/(?<==)\d+/g),
      stickyAt0: sticky.test(text),
      split: text.split(/[;=]/),
    },
  };
}
