"""The broker's errors, one class per ETSI NGSI-LD error type, and their ProblemDetails form.

Domain modules raise these; only the HTTP boundary (``app.py``) turns them into responses,
so the status code, the ETSI type URI and the title travel together with the error::

    BrokerError                      (status, type URI, title, detail)
    ├── InvalidRequest         400   the request itself is malformed (JSON, parameters)
    │   ├── PayloadTooLarge    413
    │   ├── NotAcceptable      406   the Accept header names no format the broker serves
    │   ├── MethodNotAllowed   405
    │   └── UnsupportedMediaType 415
    ├── BadRequestData         400   the request is well formed but its data is not valid
    ├── AlreadyExists          409
    ├── ResourceNotFound       404
    ├── NonExistingTenant      404
    ├── OperationNotSupported  501
    ├── LdContextNotAvailable  503   a remote @context could not be downloaded
    └── InternalError          500

Orion-LD's bodies are ``{"type","title","detail"}`` without ``status``; batch items carry
``status`` inside their ``error`` object (see ``problem``).
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ERROR_BASE",
    "AlreadyExists",
    "BadRequestData",
    "BrokerError",
    "InternalError",
    "InvalidRequest",
    "LdContextNotAvailable",
    "MethodNotAllowed",
    "NonExistingTenant",
    "NotAcceptable",
    "OperationNotSupported",
    "PayloadTooLarge",
    "ResourceNotFound",
    "UnsupportedMediaType",
]

ERROR_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class BrokerError(Exception):
    """An NGSI-LD error: ``status``, ETSI ``type`` name, ``title`` and ``detail``."""

    status: ClassVar[int] = 400
    kind: ClassVar[str] = "InvalidRequest"

    def __init__(self, title: str, detail: str = "") -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.title = title
        self.detail = detail

    @property
    def type_uri(self) -> str:
        return ERROR_BASE + self.kind

    def problem(self, *, with_status: bool = False) -> dict[str, Any]:
        """The ProblemDetails object; batch items add ``status`` (``with_status``)."""
        body: dict[str, Any] = {"type": self.type_uri, "title": self.title, "detail": self.detail}
        if with_status:
            body["status"] = self.status
        return body


class InvalidRequest(BrokerError):
    kind = "InvalidRequest"


class PayloadTooLarge(InvalidRequest):
    status = 413


class NotAcceptable(InvalidRequest):
    status = 406


class UnsupportedMediaType(InvalidRequest):
    status = 415


class MethodNotAllowed(InvalidRequest):
    status = 405


class BadRequestData(BrokerError):
    kind = "BadRequestData"


class AlreadyExists(BrokerError):
    status = 409
    kind = "AlreadyExists"


class ResourceNotFound(BrokerError):
    status = 404
    kind = "ResourceNotFound"


class NonExistingTenant(BrokerError):
    status = 404
    kind = "NonExistingTenant"


class OperationNotSupported(BrokerError):
    status = 501
    kind = "OperationNotSupported"


class LdContextNotAvailable(BrokerError):
    status = 503
    kind = "LdContextNotAvailable"


class InternalError(BrokerError):
    status = 500
    kind = "InternalError"
