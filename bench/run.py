"""``make bench``: every benchmark in turn, each in its own interpreter (they start their own broker).

Each prints its figures as a ratio against a hand-written aiokafka loop (or the relevant floor)
measured in the same run on the same broker; none of them is a test.
"""

from __future__ import annotations

import subprocess
import sys

BENCHES = ["bench_parse", "bench_filter", "bench_engine", "bench_jobs", "bench_api", "bench_cli"]


def main() -> None:
    failed = []
    for name in BENCHES:
        print(f"\n=== {name} ===", flush=True)
        if subprocess.call([sys.executable, "-m", f"bench.{name}"]) != 0:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
