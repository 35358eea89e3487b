"""A pytest plugin for ``benchmarks/gateway_oracle.py``: the mix of what the oracle asked."""

from __future__ import annotations

import sys
from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    found = [m for name, m in list(sys.modules.items()) if name.endswith("gateway_security.test_oracle")]
    stats = next((m.STATS for m in found if getattr(m, "STATS", None)), {})
    terminalreporter.write_line(f"{sum(stats.values())} generated requests, each asked of both twins:")
    for key in sorted(stats):
        terminalreporter.write_line(f"  {key:45} {stats[key]:6}")
