"""The gateway's differential oracle, longer than CI runs it, and the mix of what it asked.

CI runs ``tests/gateway_security/test_oracle.py`` on a fixed seed; this script runs it with
``--examples`` generated (agreement, request) pairs per seed, for each seed given, and prints
how many were answered, refused or failed per secret and request form (a mix with few answers
would prove little). Any difference between twin collectivities fails the run.

    .venv/bin/python benchmarks/gateway_oracle.py --examples 2000 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    failed = 0
    for seed in args.seeds:
        env = {
            **os.environ,
            "NGSILD_ADAPTER_ORACLE_EXAMPLES": str(args.examples),
            "NGSILD_ADAPTER_ORACLE_SEED": str(seed),
        }
        started = time.perf_counter()
        code = subprocess.call(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "tests.gateway_security.mix_report",
                "tests/gateway_security/test_oracle.py",
            ],
            cwd=REPO,
            env=env,
        )
        print(f"seed {seed}: {args.examples} examples, exit {code}, {time.perf_counter() - started:.0f} s")
        failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
