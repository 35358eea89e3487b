"""Where the data shipped with the adapter is found, installed or in a source checkout.

What is part of the product and read at run time ships in the wheel as package data and is
located here, through ``importlib.resources``, never relative to a working directory:

=====================  ==========================================  ==========================
shipped folder         in the wheel (``adapter/...``)              in the repository
=====================  ==========================================  ==========================
JSON-LD contexts       ``_shipped/contexts``                       ``contexts/``
built-in profiles      ``_shipped/models`` (``*.yaml``, codecs/)   ``models/``
Smart Data Models      ``_shipped/models/sdm``                     ``models/sdm/``
Keycloak realm files   ``_shipped/keycloak``                       ``compose/keycloak/``
demo agreements        ``_shipped/policies``                       ``compose/policies/``
demo configuration     ``demo/config.toml``, ``demo/events/``      the same
SPARQL queries         ``provenance/queries/*.rq``                 the same
=====================  ==========================================  ==========================

pyproject.toml maps the repository folders of the left column into ``adapter._shipped`` (the
``[tool.setuptools.package-dir]`` table; ``SHIPPED`` below is the same table, and a test keeps
the two equal). A source checkout, whether installed editable or only on ``sys.path``, has an
empty ``adapter/_shipped``; the repository's folders beside the package are read then.

What belongs to the user (their profiles, codecs, extra schemas, agreements, keys, state) is
not here: their configuration names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path

from adapter.exceptions import ConfigError

__all__ = [
    "SHIPPED",
    "ShippedDataMissing",
    "contexts_dir",
    "demo_agreements_dir",
    "demo_config",
    "demo_events_dir",
    "package_root",
    "queries_dir",
    "realm_template",
    "realms_dir",
    "shipped_models_dir",
    "shipped_schemas_dir",
]

#: Each folder of ``adapter/_shipped`` in the wheel, and the repository folder it is built from.
SHIPPED: Mapping[str, str] = {
    "contexts": "contexts",
    "models": "models",
    "keycloak": "compose/keycloak",
    "policies": "compose/policies",
}


class ShippedDataMissing(ConfigError):
    """A folder the adapter ships is absent: a broken installation (it names where it looked)."""


def _as_path(resource: object, what: str) -> Path:
    # Every installer of a wheel unpacks it to files; a zipped import would give another
    # Traversable, and the readers here need real folders (globbing, the query worker's path).
    if not isinstance(resource, Path):
        raise ShippedDataMissing(f"the adapter is not installed as files ({what} at {resource}); reinstall it with pip")
    return resource


def package_root() -> Path:
    """The folder that holds the ``adapter`` package (site-packages, or the checkout's root).

    A child Python process given this folder first on its path imports this very package.
    """
    return _as_path(files("adapter"), "the adapter package").parent


def _shipped(name: str) -> Path:
    """The shipped folder ``name``: the wheel's copy, else the checkout's repository folder."""
    installed = _as_path(files("adapter._shipped"), "adapter._shipped") / name
    if installed.is_dir():
        return installed
    root = package_root()
    checkout = root.joinpath(*SHIPPED[name].split("/"))
    # A checkout has pyproject.toml beside the package; site-packages has not.
    if (root / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    raise ShippedDataMissing(
        f"the adapter's shipped {name} are missing: looked in {installed} (installed) and {checkout} "
        "(source checkout); reinstall the package"
    )


def contexts_dir() -> Path:
    """The local copies of the JSON-LD @contexts, with their ``index.json``."""
    return _shipped("contexts")


def shipped_models_dir() -> Path:
    """The built-in device profiles (``*.yaml``) and their codecs (``codecs/``): the demo's models."""
    return _shipped("models")


def shipped_schemas_dir() -> Path:
    """The official Smart Data Models schemas the adapter ships (searched after the user's own)."""
    return _shipped("models") / "sdm"


def realms_dir() -> Path:
    """The Keycloak realm files of the demo collectivities (shared with compose/)."""
    return _shipped("keycloak")


def realm_template() -> Path:
    """The realm a new collectivity's realm is shaped like (``ville-realm.json``)."""
    return realms_dir() / "ville-realm.json"


def demo_agreements_dir() -> Path:
    """The demo's sharing agreements (ODRL), the same as compose mounts for the gateway."""
    return _shipped("policies")


def demo_config() -> Path:
    """The embedded demo configuration, used when no ``--config`` is given."""
    return _as_path(files("adapter"), "the adapter package") / "demo" / "config.toml"


def demo_events_dir() -> Path:
    """The bundled sample events (``samples``, ``parse`` and ``map`` accept them as they are)."""
    return _as_path(files("adapter"), "the adapter package") / "demo" / "events"


def queries_dir() -> Path:
    """The provenance SPARQL queries (``*.rq``)."""
    return _as_path(files("adapter"), "the adapter package") / "provenance" / "queries"
