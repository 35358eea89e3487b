// Corpus codec written for this project: ChirpStack v4 decodeUplink with input.bytes,
// input.fPort, input.recvTime (a Date) and input.variables.
// uplink: fPort=10 hex=fff641 variables={"site":"école"}
// uplink: fPort=11 hex=000a32 variables={}
function decodeUplink(input) {
  var t = (input.bytes[0] << 24 >> 16) | input.bytes[1];
  return {
    data: {
      temperature: t / 10,
      humidity: input.bytes[2],
      site: input.variables.site === undefined ? "none" : input.variables.site,
      received: input.recvTime.toISOString(),
      epochSeconds: Math.floor(input.recvTime.getTime() / 1000),
      hour: input.recvTime.getUTCHours(),
      port: input.fPort,
    },
  };
}
