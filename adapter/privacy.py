"""Privacy at the source: what a device profile removes or blurs before anything is stored.

Applied to the decoded values, before mapping, so a dropped field never reaches an
entity, the broker or the provenance record. Rules (``privacy:`` in a profile):

- ``drop``: remove the field (a household's instantaneous flow, a raw MAC address);
- ``coarsen``: round down to a step (a people count to the nearest 5 below);
- ``pseudonymise``: replace by a keyed HMAC-SHA-256, stable per collectivity, so the
  same subject stays linkable without being identifiable. The key comes from
  configuration (never from the repository).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from typing import Any

from adapter.mapping.profile import PrivacySpec

__all__ = ["apply_privacy"]


def apply_privacy(
    data: Mapping[str, Any], rules: PrivacySpec, *, key: bytes | None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The data with the rules applied, and the list of rules that changed something.

    Paths are top-level field names of the decoded object; nested objects are copied.
    """
    out = dict(data)
    applied: list[str] = []
    for name in rules.drop:
        if name in out:
            del out[name]
            applied.append(f"drop:{name}")
    for name, step in rules.coarsen.items():
        value = out.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            coarse = math.floor(value / step) * step
            out[name] = int(coarse) if float(step).is_integer() else coarse
            applied.append(f"coarsen:{name}:{step:g}")
    for name in rules.pseudonymise:
        if name in out:
            if key is None:
                # Refuse rather than leak: without a key the field cannot be pseudonymised.
                del out[name]
                applied.append(f"drop:{name}:no-pseudonym-key")
            else:
                digest = hmac.new(key, str(out[name]).encode("utf-8"), hashlib.sha256).hexdigest()
                out[name] = digest[:32]
                applied.append(f"pseudonymise:{name}")
    return out, tuple(applied)
