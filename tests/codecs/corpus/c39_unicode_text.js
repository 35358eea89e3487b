// Corpus codec written for this project: non-ASCII units and labels, astral characters,
// escapes, and string methods over them.
// uplink: fPort=1 hex=13
function decodeUplink(input) {
  var label = "température " + input.bytes[0] + " °C";
  var emoji = "\u{1F321}\uFE0F";
  return {
    data: {
      label: label,
      unit: "µg/m³",
      emoji: emoji,
      length: emoji.length,
      codePoints: Array.from(emoji).length,
      upper: "straße".toUpperCase(),
      escaped: "tab\tquote\"backslash\\newline\n",
      control: String.fromCharCode(1, 31, 127),
      trimmed: "  padded  ".trim(),
      repeated: "ab".repeat(3),
      at: "hello".at(-1),
    },
  };
}
