// Corpus codec written for this project: keys that YAML or a careless parser would turn
// into other values ("false", "NO", "null", "1e3", "0"), and values that look like them.
// uplink: fPort=1 hex=01
function decodeUplink(input) {
  return {
    data: {
      "false": "false", "NO": false, "no": "NO", "null": "null", "~": "tilde", "1e3": 1e3,
      "0": 0, "01": "01", "yes": "y", "on": "off", "": "", " ": " space",
      "nested": { "true": true, "True": "True", "undefined": "undefined" },
      "list": ["false", "NO", "null", "0", ""],
    },
  };
}
