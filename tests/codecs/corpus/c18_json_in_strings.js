// Corpus codec written for this project: a JSON document carried as text in the payload.
// uplink: fPort=1 hex=7b2274223a32312e352c22747970223a22656e76222c22763a5b312c325d7d
// uplink: fPort=1 hex=7b2274223a32312e352c2274797065223a22656e76222c2276223a5b312c325d7d
function decodeUplink(input) {
  var text = String.fromCharCode.apply(null, input.bytes);
  try {
    var doc = JSON.parse(text);
    return { data: { doc: doc, text: JSON.stringify(doc), keys: Object.keys(doc).sort() } };
  } catch (e) {
    return { data: {}, errors: ["not JSON: " + e.name] };
  }
}
