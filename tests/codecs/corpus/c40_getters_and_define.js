// Corpus codec written for this project: result objects with getters and
// non-enumerable properties (JSON keeps own enumerable properties only).
// uplink: fPort=1 hex=0a14
function decodeUplink(input) {
  var data = { a: input.bytes[0] };
  Object.defineProperty(data, "hidden", { value: "not in JSON", enumerable: false });
  Object.defineProperty(data, "sum", { get: function () { return this.a + input.bytes[1]; }, enumerable: true });
  var proto = { inherited: true };
  var child = Object.create(proto);
  child.own = "yes";
  data.child = child;
  data.frozen = Object.freeze({ x: 1 });
  return { data: data };
}
