"""The canonical bar table every source returns and every consumer reads.

Columns: ``symbol`` (str), ``timestamp`` (tz-aware UTC, ``datetime64[ns, UTC]``),
``open, high, low, close, volume`` (float64) and, where the source has it, ``adj_close``.
Daily bars are stamped at 00:00 UTC of the session date. Close-only sources keep
``open/high/low`` (and ``volume`` when absent) as NaN; nothing is ever fabricated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CANONICAL_COLUMNS: tuple[str, ...] = ("symbol", "timestamp", "open", "high", "low", "close", "volume")
OPTIONAL_COLUMNS: tuple[str, ...] = ("adj_close",)
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
FREQUENCIES: tuple[str, ...] = ("1d", "1h", "1min")
FREQ_TIMEDELTA: dict[str, pd.Timedelta] = {
    "1d": pd.Timedelta(days=1),
    "1h": pd.Timedelta(hours=1),
    "1min": pd.Timedelta(minutes=1),
}


@dataclass
class RawBars:
    """Bars as one source produced them, before validation and storage.

    Parameters
    ----------
    frame:
        Canonical columns (see module docstring); any row order (validation checks it).
    origin:
        Where the bars came from (a file path or ``yahoo``); error messages name it.
    freq:
        One of :data:`FREQUENCIES`.
    close_only:
        True when the source has no genuine open/high/low.
    adjusted:
        True when prices are already adjusted for splits (and usually dividends), so a
        large one-bar move is a real move, not an unadjusted split.
    """

    frame: pd.DataFrame
    origin: str
    freq: str = "1d"
    close_only: bool = False
    adjusted: bool = False

    @property
    def symbols(self) -> list[str]:
        return sorted(self.frame["symbol"].astype(str).unique().tolist())


def canonical_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with the canonical column order and dtypes (no validation)."""
    columns = list(CANONICAL_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in frame.columns]
    out = frame.loc[:, columns].copy()
    out["symbol"] = out["symbol"].astype(str)
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    for col in columns[2:]:
        out[col] = out[col].astype("float64")
    return out


def in_date_range(timestamps: pd.Series, start: str | None, end: str | None) -> np.ndarray:
    """Which ``timestamps`` (UTC) fall on the days ``start`` .. ``end``, both inclusive (``None``: unbounded)."""
    keep = np.ones(len(timestamps), dtype=bool)
    if start is not None:
        keep &= (timestamps >= pd.Timestamp(start, tz="UTC")).to_numpy()
    if end is not None:
        keep &= (timestamps < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)).to_numpy()
    return keep
