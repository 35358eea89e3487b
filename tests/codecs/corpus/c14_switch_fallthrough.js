// Corpus codec written for this project: switch with fallthrough and default in the middle.
// uplink: fPort=1 hex=01
// uplink: fPort=1 hex=02
// uplink: fPort=1 hex=05
// uplink: fPort=1 hex=09
function decodeUplink(input) {
  var steps = [];
  switch (input.bytes[0]) {
    case 1:
      steps.push("one");
    case 2:
      steps.push("two");
      break;
    default:
      steps.push("default");
    case 5:
      steps.push("five");
      break;
    case 6:
      steps.push("six");
  }
  return { data: { steps: steps } };
}
