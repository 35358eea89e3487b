// Corpus codec written for this project: ChirpStack v3 Decode(fPort, bytes, variables).
// uplink: fPort=5 hex=00d737 variables={"site":"north","offset":"1.5"}
// uplink: fPort=6 hex=010203 variables={}
function Decode(fPort, bytes, variables) {
  var offset = parseFloat(variables.offset || "0");
  return {
    temperature: ((bytes[0] << 8) | bytes[1]) / 10 + offset,
    humidity: bytes[2],
    site: variables.site || null,
    port: fPort,
  };
}
