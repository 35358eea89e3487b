"""Errors raised by the adapter.

One root, grouped by what the caller can do about them::

    AdapterError
    ├── ConfigError              a configuration, device-profile or policy file is wrong:
    │                            fix the file, nothing was processed
    └── RejectedInput            an input cannot be turned into entities: it goes to the
        │                        dead-letter store with ``reason`` (a stable code) and
        │                        ``detail`` (for people), and the pipeline keeps going
        ├── EventError           the network-server event itself is unusable
        ├── UnknownDevice        no device profile matches the device
        ├── ForeignDevice        the device is registered to another collectivity than the
        │                        connection the event came on
        ├── CodecError           the payload codec failed, timed out or returned errors
        └── MappingError         the decoded values cannot become valid entities

``RejectedInput.reason`` codes are listed in ``REASONS``; they are what the dead-letter
store and the counters record, so they never change meaning.
"""

from __future__ import annotations

__all__ = [
    "REASONS",
    "AdapterError",
    "CodecError",
    "ConfigError",
    "EventError",
    "ForeignDevice",
    "MappingError",
    "RejectedInput",
    "UnknownDevice",
]

#: Every dead-letter reason code, with what it means.
REASONS: dict[str, str] = {
    "malformed_json": "the event body is not valid JSON",
    "invalid_utf8": "the event body is not valid UTF-8",
    "invalid_protobuf": "the event body is not a valid protobuf message of the expected type",
    "unknown_format": "the event is not a message of the expected network-server format",
    "missing_field": "a field the event must carry is missing or has the wrong type",
    "bad_base64": "the payload is not valid base64",
    "empty_payload": "the uplink has no payload and the network server decoded nothing",
    "payload_too_large": "the payload is larger than the configured limit",
    "body_too_large": "the event body is larger than the configured limit (ParseLimits.max_body_bytes)",
    "body_too_deep": "the event body nests objects or arrays deeper than the configured limit (ParseLimits.max_depth)",
    "future_timestamp": "a timestamp is too far in the future to be trusted",
    "bad_timestamp": "a timestamp cannot be parsed",
    "topic_mismatch": "the MQTT topic names another device or application than the payload",
    "unknown_device": "no device profile matches the device",
    "device_collectivity_mismatch": (
        "the device is registered ([[device]] collectivity) to another collectivity than the one "
        "of the connection the event came on"
    ),
    "codec_error": "the codec raised an error",
    "codec_timeout": "the codec ran longer than its time limit",
    "codec_memory": "the codec used more memory than its limit",
    "codec_errors": "the codec returned errors",
    "codec_non_json": "the codec returned something that is not a JSON value",
    "codec_result_too_large": "the codec's result is longer or nests deeper than the limits of adapter.codecs.javascript",
    "non_finite_value": "a decoded value is NaN or infinite",
    "missing_value": "a value the device profile requires is missing from the decoded data",
    "bad_value": "a decoded value has the wrong type for its attribute",
    "meter_index_decrease": "a cumulative meter index went down without a meter-change event",
    "schema_invalid": "an entity does not validate against its Smart Data Models schema",
    "not_canonical": (
        "a value cannot be recorded exactly in the RFC 8785 canonical JSON of the provenance record "
        "(an integer beyond +/-(2**53 - 1), text that is not Unicode)"
    ),
    "broker_refused": "the NGSI-LD broker refused the entity (the detail holds its problem details)",
    "broker_unconfirmed": (
        "no answer of the NGSI-LD broker confirmed the entity, even sent alone (the detail holds what it answered)"
    ),
    "late_observation_not_written": (
        "an observation older than the entity's current value, which the NGSI-LD broker cannot add to the "
        "entity's history (it does not implement POST /temporal/entities/{id}/attrs; Orion-LD answers 501)"
    ),
}


class AdapterError(Exception):
    """Root of every error the adapter raises on purpose."""


class ConfigError(AdapterError):
    """A configuration or device-profile file is invalid; the message names the file and field."""


class RejectedInput(AdapterError):
    """An input that goes to the dead-letter store.

    ``reason`` is one of the codes in ``REASONS``; ``detail`` says what exactly was wrong.
    """

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown dead-letter reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class EventError(RejectedInput):
    """The network-server event cannot be parsed (format, encoding, fields, topic, time)."""


class UnknownDevice(RejectedInput):
    """No device profile matches the device of an uplink."""

    def __init__(self, detail: str) -> None:
        super().__init__("unknown_device", detail)


class ForeignDevice(RejectedInput):
    """The device registry binds the device to another collectivity than the event's connection.

    Refused rather than stored: storing it would put one collectivity's registered name and
    location into another's tenant (a forged or misrouted uplink). It will never get better on
    that connection, so the transport acknowledges it like every other dead letter.
    """

    def __init__(self, detail: str) -> None:
        super().__init__("device_collectivity_mismatch", detail)


class CodecError(RejectedInput):
    """A codec failed: raised, timed out, ran out of memory, returned errors or non-JSON."""


class MappingError(RejectedInput):
    """Decoded values cannot be mapped to valid NGSI-LD entities."""
