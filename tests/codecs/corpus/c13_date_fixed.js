// Corpus codec written for this project: Date arithmetic on fixed inputs (UTC only).
// uplink: fPort=1 hex=65f1a2b3
// uplink: fPort=1 hex=00000000
function decodeUplink(input) {
  var b = input.bytes;
  var seconds = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
  var when = new Date(seconds * 1000);
  var base = Date.UTC(2020, 0, 1, 0, 0, 0);
  return {
    data: {
      iso: when.toISOString(),
      year: when.getUTCFullYear(),
      month: when.getUTCMonth() + 1,
      weekday: when.getUTCDay(),
      daysSince2020: Math.floor((when.getTime() - base) / 86400000),
      parsed: Date.parse("2024-02-29T23:59:59.999Z"),
      date: when,
      ageSeconds: Math.round((input.recvTime.getTime() - when.getTime()) / 1000),
    },
  };
}
