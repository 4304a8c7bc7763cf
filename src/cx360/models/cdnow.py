"""The CDNOW sample (Fader, Hardie & Lee 2005) as a transactions frame, for tests and benchmarks.

The file ships inside the ``lifetimes`` package; it is read from that installation without importing
the package (which is unmaintained and not a runtime dependency of cx360).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pandas as pd

from cx360.errors import MissingDependencyError

CALIBRATION_END = "1997-09-30"  # end of week 39
HOLDOUT_END = "1998-06-30"  # end of week 78

# Published fits on this sample: BG/NBD (Fader, Hardie & Lee 2005, table 1 / the lifetimes docs) and
# Gamma-Gamma on the 946 repeat customers (Fader & Hardie 2013 note).
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BGNBD_LL = -9582.4
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def lifetimes_file(name: str) -> Path:
    try:
        dist = metadata.distribution("lifetimes")
    except metadata.PackageNotFoundError as exc:
        raise MissingDependencyError("The CDNOW sample (from the lifetimes package)", "bench") from exc
    return Path(dist.locate_file(f"lifetimes/datasets/{name}"))


def load_cdnow_sample() -> pd.DataFrame:
    """2,357 customers' purchases, Jan 1997 - Jun 1998: customer, date, cds, amount (US dollars).

    The file is whitespace-separated without a header: master id, sample id, yyyymmdd, CDs, dollars.
    """
    df = pd.read_csv(
        lifetimes_file("CDNOW_sample.txt"),
        sep=r"\s+",
        header=None,
        names=["master_id", "customer", "date", "cds", "amount"],
        dtype={"customer": str, "date": str},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    return df[["customer", "date", "cds", "amount"]]
