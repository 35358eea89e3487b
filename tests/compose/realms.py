"""The production realm files, derived from the dev realms (so the two cannot drift apart).

The dev realms (``compose/keycloak/*-realm.json``) serve the tests and the dev Keycloak
(``adapter/demo/keycloak.py``, ``adapter/access/admin.py`` read them there). A production
realm is the same realm with:

- no person in it: only the service-account users stay (they carry the machine clients'
  roles); people are added by the collectivity's administrators afterwards;
- no password grant: the public client ``cli`` keeps the code flow with PKCE only;
- no dev-only default: ``${VARIABLE:dev-only-...}`` becomes ``${VARIABLE}``, so a secret
  missing from the environment is never replaced by a published value;
- TLS required on every connection (``sslRequired: all``), as Keycloak serves HTTPS only.

``python -m tests.compose.realms`` rewrites ``compose/keycloak/production/`` from the dev
realms; ``tests/compose/test_stack.py`` fails while the committed files differ from it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.support import REPO

__all__ = ["DEV_REALMS", "PRODUCTION_REALMS", "production_realm", "render", "write_production_realms"]

DEV_REALMS = REPO / "compose" / "keycloak"
PRODUCTION_REALMS = DEV_REALMS / "production"
_DEV_DEFAULT = re.compile(r"\$\{(?P<name>[A-Z][A-Z0-9_]*):dev-only-[^}]*\}")
#: the dev files' notes about dev-only values, which the production text does without
_DEV_NOTES = (re.compile(r" DEV ONLY secret: [^.]*\."), re.compile(r"; password grant for scripted tests \([^)]*\)"))
_COMMENT = (
    "Realm of {name}, for production: generated from ../{file} by `python -m tests.compose.realms` "
    "(no test users, no password grant, no dev-only default; see compose/keycloak/README.md). "
    "Edit the dev realm, then regenerate."
)


def production_realm(dev: dict[str, Any], file_name: str) -> dict[str, Any]:
    """The production form of the dev realm ``dev`` (read from ``file_name``)."""
    text = _DEV_DEFAULT.sub(lambda m: "${" + m["name"] + "}", json.dumps(dev, ensure_ascii=False))
    for note in _DEV_NOTES:
        text = note.sub("", text)
    realm = json.loads(text)
    realm["attributes"] = {
        **realm.get("attributes", {}),
        "_comment": _COMMENT.format(name=realm.get("displayName", realm["realm"]), file=file_name),
    }
    realm["sslRequired"] = "all"
    realm["users"] = [u for u in realm.get("users", []) if u.get("serviceAccountClientId")]
    for client in realm.get("clients", []):
        if client.get("publicClient"):
            client["directAccessGrantsEnabled"] = False  # no password grant for any public client
    return realm


def render(realm: dict[str, Any]) -> str:
    """The file text of a realm (the same layout as the dev files)."""
    return json.dumps(realm, ensure_ascii=False, indent=2) + "\n"


def write_production_realms() -> list[Path]:
    """Rewrite ``compose/keycloak/production/`` from the dev realms; the paths written."""
    PRODUCTION_REALMS.mkdir(exist_ok=True)
    written = []
    for dev_file in sorted(DEV_REALMS.glob("*-realm.json")):
        target = PRODUCTION_REALMS / dev_file.name
        target.write_text(render(production_realm(json.loads(dev_file.read_text()), dev_file.name)))
        written.append(target)
    return written


if __name__ == "__main__":
    for path in write_production_realms():
        print(path.relative_to(REPO))
