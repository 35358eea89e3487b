// Corpus codec written for this project: pre-ES2015 constructors and prototypes, as many
// older vendor codecs are written.
// uplink: fPort=1 hex=0c8003e8
function Sensor(raw) {
  this.raw = raw;
}
Sensor.prototype.voltage = function () { return this.raw / 1000; };
Sensor.prototype.kind = "adc";

function Battery(raw) { Sensor.call(this, raw); this.type = "battery"; }
Battery.prototype = Object.create(Sensor.prototype);
Battery.prototype.constructor = Battery;
Battery.prototype.percent = function () { return Math.max(0, Math.min(100, Math.round((this.voltage() - 2.5) / 1.1 * 100))); };

function decodeUplink(input) {
  var b = new Battery((input.bytes[0] << 8) | input.bytes[1]);
  var s = new Sensor((input.bytes[2] << 8) | input.bytes[3]);
  return { data: { volts: b.voltage(), percent: b.percent(), kind: b.kind, sensor: s, isSensor: b instanceof Sensor } };
}
