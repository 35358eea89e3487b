// Corpus codec written for this project: a large nested result (hundreds of objects,
// several levels), like multi-channel loggers produce.
// uplink: fPort=1 hex=0503
function decodeUplink(input) {
  var channels = input.bytes[0] * 40, levels = input.bytes[1];
  var data = { channels: [] };
  for (var c = 0; c < channels; c++) {
    var node = { id: c, name: "ch" + c, values: [c, c / 4, -c] };
    var leaf = node;
    for (var l = 0; l < levels; l++) { leaf.next = { level: l, ok: (c + l) % 3 === 0 }; leaf = leaf.next; }
    data.channels.push(node);
  }
  data.index = {};
  for (var j = 0; j < channels; j += 10) data.index["k" + j] = data.channels[j].name;
  return { data: data };
}
