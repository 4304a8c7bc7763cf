"""Speed of the synthetic bank generator, and the size of the world it writes.

python benchmarks/bench_generator.py --customers 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from cx360.demo import generate_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="keep the world here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        world = generate_world(args.out or Path(tmp) / "world", customers=args.customers, seed=args.seed)
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'file':28}{'rows':>14}")
    for name, rows in sorted(world.rows.items()):
        print(f"{name:28}{rows:>14,}")
    total = sum(world.rows.values())
    print(f"{'total':28}{total:>14,}")
    print(
        f"customers: {world.customers:,}; seconds: {world.seconds:.1f}; "
        f"customers/s: {world.customers / world.seconds:,.0f}; "
        f"rows/s: {total / world.seconds:,.0f}; bytes written: {world.bytes / 1e6:,.1f} MB"
    )


if __name__ == "__main__":
    main()
