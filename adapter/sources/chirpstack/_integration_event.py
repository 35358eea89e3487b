"""The protobuf ``IntegrationEvent`` message, which chirpstack-api 4.20 no longer ships.

ChirpStack v4 defines ``IntegrationEvent`` in ``integration/integration.proto`` (events that an
integration such as LoRa Cloud emits, MQTT event type ``integration``), but the Python
package lacks the class. When it is missing, the message is declared here with the same
package, field numbers and types, so a binary ``integration`` event still decodes.
"""

from __future__ import annotations

from chirpstack_api.integration import integration_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

__all__ = ["integration_event_type"]

_F = descriptor_pb2.FieldDescriptorProto

# (name, JSON name, type, message type) in field-number order, as in integration.proto.
_FIELDS = (
    ("deduplication_id", "deduplicationId", _F.TYPE_STRING, None),
    ("time", "time", _F.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
    ("device_info", "deviceInfo", _F.TYPE_MESSAGE, ".integration.DeviceInfo"),
    ("integration_name", "integrationName", _F.TYPE_STRING, None),
    ("event_type", "eventType", _F.TYPE_STRING, None),
    ("object", "object", _F.TYPE_MESSAGE, ".google.protobuf.Struct"),
)


def integration_event_type() -> type[Message]:
    existing: type[Message] | None = getattr(integration_pb2, "IntegrationEvent", None)
    if existing is not None:
        return existing
    pool = descriptor_pool.Default()
    try:
        descriptor = pool.FindMessageTypeByName("integration.IntegrationEvent")
    except KeyError:
        pool.AddSerializedFile(_file().SerializeToString())
        descriptor = pool.FindMessageTypeByName("integration.IntegrationEvent")
    created: type[Message] = message_factory.GetMessageClass(descriptor)
    return created


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="adapter/chirpstack/integration_event.proto",
        package="integration",
        syntax="proto3",
        dependency=[
            integration_pb2.DESCRIPTOR.name,
            "google/protobuf/timestamp.proto",
            "google/protobuf/struct.proto",
        ],
    )
    message = file.message_type.add(name="IntegrationEvent")
    for number, (name, json_name, kind, type_name) in enumerate(_FIELDS, start=1):
        field = message.field.add(name=name, number=number, json_name=json_name, type=kind, label=_F.LABEL_OPTIONAL)
        if type_name is not None:
            field.type_name = type_name
    return file
