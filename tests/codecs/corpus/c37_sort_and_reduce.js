// Corpus codec written for this project: sort with comparators (stable), filter, reduce,
// some/every, find, flat and flatMap.
// uplink: fPort=1 hex=0503070103020801
function decodeUplink(input) {
  var items = [];
  for (var i = 0; i + 1 < input.bytes.length; i += 2) items.push({ key: input.bytes[i], rank: input.bytes[i + 1] });
  var sorted = items.slice().sort(function (a, b) { return a.rank - b.rank; });
  return {
    data: {
      byRank: sorted.map(function (x) { return x.key; }),
      numeric: input.bytes.slice().sort(function (a, b) { return b - a; }),
      lexical: input.bytes.map(String).concat(["10", "9"]).sort(),
      evens: input.bytes.filter(function (b) { return b % 2 === 0; }),
      max: input.bytes.reduce(function (m, b) { return b > m ? b : m; }, -Infinity),
      some: input.bytes.some(function (b) { return b > 7; }),
      every: input.bytes.every(function (b) { return b > 0; }),
      found: items.find(function (x) { return x.rank === 3; }) || null,
      flat: [[1, [2]], [3]].flat(2),
      flatMap: [1, 2].flatMap(function (x) { return [x, x * 10]; }),
    },
  };
}
