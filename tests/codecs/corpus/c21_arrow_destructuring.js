// Corpus codec written for this project: arrow functions, destructuring, default
// parameters, rest and template literals.
// uplink: fPort=4 hex=0a141e28
// uplink: fPort=4 hex=05
const pairUp = ([first = 0, second = 0, ...rest] = []) => ({ first, second, rest });

const decodeUplink = ({ bytes, fPort }) => {
  const { first, second, rest } = pairUp(bytes);
  const total = [first, second, ...rest].reduce((a, b) => a + b, 0);
  return { data: { first, second, rest, total, label: `port ${fPort}: ${bytes.length} bytes` } };
};
