"""The product's data folders, as the wheel carries them.

In a built wheel this package holds ``contexts/``, ``models/`` (the built-in profiles and
codecs, and the official Smart Data Models schemas in ``models/sdm``), ``keycloak/`` and
``policies/``: pyproject.toml maps the repository's top-level ``contexts/``, ``models/``,
``compose/keycloak/`` and ``compose/policies/`` here. In a source checkout the folder is
empty and those repository folders are read in place. Nothing here is read directly:
``adapter.resources`` is the one place that locates them.
"""

__all__: list[str] = []
