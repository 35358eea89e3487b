"""The errors of a device-registry import, one tree under ``RegistryError``::

    RegistryError                  an import of one application failed: the last good import
    │                              is kept, the next period tries again
    ├── RegistryUnavailable        the network server could not be reached or did not answer
    │                              in time (network, TLS, timeout, 5xx, UNAVAILABLE)
    ├── RegistryAuthFailed         the API token or key was refused, or is not set
    │                              (UNAUTHENTICATED, PERMISSION_DENIED, 401, 403)
    ├── RegistryNotFound           the application is unknown to the network server
    ├── RegistryAnswerError        the answer is not what the network server's API documents
    │                              (not JSON, wrong shape, more devices than allowed)
    └── DeviceRefused              one device of an answer is unusable (no valid DevEUI): it
                                   is skipped and named in the import's report, the rest imported

Foreign errors (``grpc.aio.AioRpcError``, ``aiohttp.ClientError``) are translated where they
occur, in the source modules, and chained. Messages name the source and the application,
never the token.
"""

from __future__ import annotations

__all__ = [
    "DeviceRefused",
    "RegistryAnswerError",
    "RegistryAuthFailed",
    "RegistryError",
    "RegistryNotFound",
    "RegistryUnavailable",
]


class RegistryError(Exception):
    """One application's devices could not be imported; the message says why, for an operator."""


class RegistryUnavailable(RegistryError):
    """The network server could not be reached, or did not answer in time."""


class RegistryAuthFailed(RegistryError):
    """The network server refused the API token (or key), or no token is configured."""


class RegistryNotFound(RegistryError):
    """The network server does not know the application."""


class RegistryAnswerError(RegistryError):
    """The network server's answer is not of the documented shape, or too large."""


class DeviceRefused(RegistryError):
    """One device of an answer cannot be imported (no valid DevEUI); the others are."""
