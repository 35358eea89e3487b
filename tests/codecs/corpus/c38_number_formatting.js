// Corpus codec written for this project: number formatting and parsing corner cases
// (toFixed, toPrecision, parseInt radix, exponent notation, -0, large integers).
// uplink: fPort=1 hex=01
function decodeUplink(input) {
  return {
    data: {
      fixed: (1.005).toFixed(2),
      precision: (123.456).toPrecision(4),
      exp: (0.00001234).toString(),
      large: 2 ** 53 - 1,
      tiny: 5e-324,
      negZero: -0,
      parsedHex: parseInt("ff", 16),
      parsedBin: parseInt("1010", 2),
      parsedTrailing: parseInt("42px", 10),
      parsedFloat: parseFloat("3.14abc"),
      numberOf: [Number(""), Number("0x10"), Number(" 12 "), Number(true)],
      third: 1 / 3,
      radix36: (123456789).toString(36),
      byte: input.bytes[0] / 255,
    },
  };
}
