"""Digital archetypes learned from labelled survey answers against the rules, on the demo bank.

The demo's survey (a quarter of its customers) places each respondent in an archetype, one in ten of
them wrongly, as a questionnaire does. The classifier learns from respondents (80% of them, split by
person) and is scored against the bank's hidden truth on people whose labels it never saw: the other
20% of respondents, and everyone who never answered. Next to it: the rules (the grid of the two scores)
and the majority class of the training labels.

    python benchmarks/bench_archetypes.py [--customers 3000] [--seed 7]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cx360.models.archetype_classifier import ArchetypeClassifier
from cx360.models.archetypes import ARCHETYPES
from cx360.workspace import Workspace

DATA = Path(__file__).resolve().parent / ".data"
RARE = ("paranoid", "chameleon", "nomad")


def demo_world(customers: int, seed: int) -> Path:
    from cx360.demo import generate_world
    from cx360.identity.resolve import resolve
    from cx360.profiles.build import build
    from cx360.sources.ingest import ingest

    root = DATA / f"archetypes-demo-{customers}-{seed}"
    if not (root / "warehouse.duckdb").is_file():
        shutil.rmtree(root, ignore_errors=True)
        generate_world(root, customers=customers, seed=seed)
        with Workspace(root) as ws:
            ingest(ws)
            resolve(ws)
            build(ws)
    return root


def frame(root: Path) -> pd.DataFrame:
    """Per profile: traits, the rules' archetype, the survey label and the true archetype."""
    from cx360.demo.scoring import profile_persons
    from cx360.scoring.archetypes import scored
    from cx360.segments.builtin import as_of_of

    with Workspace(root) as ws:
        f = ws.engine.to_arrow(scored(ws.engine, as_of_of(ws.engine)), step="bench: archetypes").to_pandas()
        owners = profile_persons(ws, root / "truth")
    truth = pd.read_parquet(root / "truth" / "persons.parquet", columns=["person_id", "archetype"])
    truth = truth.rename(columns={"archetype": "true_archetype"})
    return f.merge(owners, on="profile_id").merge(truth, on="person_id")


def recalls(truth: pd.Series, predicted: np.ndarray) -> dict[str, float]:
    out = {a: float((predicted[truth.to_numpy() == a] == a).mean()) for a in ARCHETYPES if (truth == a).any()}
    out["accuracy"] = float((predicted == truth.to_numpy()).mean())
    out["macro recall"] = float(np.mean([out[a] for a in ARCHETYPES if a in out]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.perf_counter()
    f = frame(demo_world(args.customers, args.seed))
    print(
        f"demo bank: {args.customers:,} customers, seed {args.seed}: {len(f):,} profiles "
        f"({time.perf_counter() - started:.0f} s to build or read)"
    )
    labelled = f[f.label.notna()]
    rng = np.random.default_rng(0)
    train_ids = set(labelled.profile_id[rng.random(len(labelled)) < 0.8])
    train = labelled[labelled.profile_id.isin(train_ids)]
    model = ArchetypeClassifier().fit(train, train.label)
    majority = train.label.value_counts().index[0]
    label_accuracy = float((train.label == train.true_archetype).mean())
    print(
        f"survey labels: {len(labelled):,} respondents, {len(train):,} to train on "
        f"(their labels agree with the truth for {label_accuracy:.3f}); majority label '{majority}'"
    )
    sets = {
        "held-out respondents": labelled[~labelled.profile_id.isin(train_ids)],
        "never surveyed": f[f.label.isna()],
    }
    for name, part in sets.items():
        rows = {
            "learned": recalls(part.true_archetype, model.predict(part)),
            "rules": recalls(part.true_archetype, part.archetype.to_numpy()),
            "majority": recalls(part.true_archetype, np.full(len(part), majority, dtype=object)),
        }
        table = pd.DataFrame(rows).T[[*RARE, *[a for a in ARCHETYPES if a not in RARE], "accuracy", "macro recall"]]
        print(f"\n== {name}: {len(part):,} profiles; recall per true archetype, against the truth ==")
        print(table.round(3).to_string())


if __name__ == "__main__":
    main()
