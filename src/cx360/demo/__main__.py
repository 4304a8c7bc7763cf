"""python -m cx360.demo OUT_DIR [--customers N] [--seed S]"""

import argparse

from cx360.demo import generate_world

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out_dir")
parser.add_argument("--customers", type=int, default=3000)
parser.add_argument("--seed", type=int, default=7)
args = parser.parse_args()
world = generate_world(args.out_dir, customers=args.customers, seed=args.seed)
for name, n in sorted(world.rows.items()):
    print(f"{name:28} {n:>12,}")
print(f"{world.customers:,} customers, {world.bytes / 1e6:.1f} MB in {world.seconds:.1f} s")
