"""Market data: sources -> validation -> Parquet store -> canonical bars."""

import pandas as pd

from rltrade.data.schema import CANONICAL_COLUMNS, RawBars
from rltrade.data.store import BarStore, load_bars

__all__ = ["CANONICAL_COLUMNS", "BarStore", "RawBars", "load_bars", "sample"]


def sample(name: str) -> pd.DataFrame:
    """An embedded real sample as validated canonical bars, without a store (``rltrade data sources`` lists them).

    >>> bars = sample("sp500")         # doctest: +SKIP
    """
    from rltrade.data.sources import fetch
    from rltrade.data.validate import validate_bars

    batches = fetch(f"sample:{name}")
    frames = [validate_bars(raw) for raw in batches]
    bars = pd.concat(frames, ignore_index=True).sort_values(["timestamp", "symbol"], kind="stable")
    bars = bars.reset_index(drop=True)
    symbols = sorted(bars["symbol"].unique())
    bars.attrs = {
        "freq": batches[0].freq,
        "close_only": {s: any(b.close_only for b in batches) for s in symbols},
        "adjusted": {s: all(b.adjusted for b in batches) for s in symbols},
        "source": f"sample:{name}",
    }
    return bars
