// Corpus codec written for this project: ASCII text with String.fromCharCode.
// uplink: fPort=1 hex=48656c6c6f2c204c6f5261
// uplink: fPort=1 hex=c3a9e282ac
function decodeUplink(input) {
  var ascii = String.fromCharCode.apply(null, input.bytes);
  var chars = "";
  for (var i = 0; i < input.bytes.length; i++) chars += String.fromCharCode(input.bytes[i]);
  var utf8 = decodeURIComponent(escape(ascii));
  return { data: { ascii: ascii, same: ascii === chars, utf8: utf8, codes: utf8.split("").map(function (c) { return c.charCodeAt(0); }) } };
}
