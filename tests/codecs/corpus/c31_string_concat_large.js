// Corpus codec written for this project: a long hex dump and a report line built by
// concatenation (QuickJS-NG ropes), as vendor debug fields are.
// uplink: fPort=1 hex=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
function decodeUplink(input) {
  var dump = "";
  for (var round = 0; round < 40; round++) {
    for (var i = 0; i < input.bytes.length; i++) dump += ("0" + input.bytes[i].toString(16)).slice(-2);
  }
  var report = "";
  for (var k = 0; k < 300; k++) report = report + "field" + k + "=" + (k * 3) + ";";
  var big = "A".repeat(700) + "B".repeat(700);
  return { data: { dump: dump, report: report, big: big, sizes: [dump.length, report.length, big.length] } };
}
