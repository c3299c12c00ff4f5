"""Validation of incoming bars: bad input is refused with a message naming the file, symbol and row.

Every check runs before anything is written, so a refused ingest leaves the store untouched.
Rows are named by their 1-based position among the data rows of the input (for a CSV file with
a header, data row ``N`` is on line ``N + 1``) together with the timestamp.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from rltrade.data.schema import PRICE_COLUMNS, RawBars, canonical_frame
from rltrade.errors import DataValidationError

log = logging.getLogger(__name__)

ROW_COLUMN = "_row"  # optional column a source may add: 1-based data-row number in its input
MAX_EXAMPLES = 3
# Relative slack for "close within [low, high]": vendors round OHLC independently.
OHLC_TOLERANCE = 1e-6


def _where(raw: RawBars, frame: pd.DataFrame, mask: np.ndarray) -> str:
    """Describe the first few offending rows: ``AAPL row 17 (2016-03-04)``."""
    idx = np.flatnonzero(mask)
    stamps = pd.DatetimeIndex(frame["timestamp"])
    rows = frame[ROW_COLUMN].to_numpy() if ROW_COLUMN in frame.columns else np.arange(1, len(frame) + 1)
    parts = []
    for i in idx[:MAX_EXAMPLES]:
        ts = stamps[i]
        stamp = "NaT" if ts is pd.NaT else ts.isoformat().replace("T00:00:00+00:00", "")
        parts.append(f"{frame['symbol'].astype(str).iat[i]} row {rows[i]} ({stamp})")
    more = f" and {len(idx) - MAX_EXAMPLES} more" if len(idx) > MAX_EXAMPLES else ""
    return ", ".join(parts) + more


def _fail(raw: RawBars, frame: pd.DataFrame, mask: np.ndarray, problem: str, hint: str = "") -> None:
    if mask.any():
        message = f"{raw.origin}: {problem} at {_where(raw, frame, mask)}"
        raise DataValidationError(message + (f". {hint}" if hint else ""))


def validate_bars(raw: RawBars, *, accept_jumps: bool = False, max_jump: float = 0.5) -> pd.DataFrame:
    """Check ``raw`` and return its canonical frame sorted by (timestamp, symbol).

    Parameters
    ----------
    raw:
        Bars from a source.
    accept_jumps:
        Accept one-bar moves larger than ``max_jump`` in data that carries no adjustment
        information (they usually are unadjusted splits).
    max_jump:
        Largest accepted absolute one-bar close-to-close return for unadjusted data.

    Raises
    ------
    DataValidationError
        Naming the origin, the symbol, the row and the timestamp of the first offending rows.
    """
    frame = raw.frame
    if len(frame) == 0:
        raise DataValidationError(f"{raw.origin}: no rows (the input is empty)")
    if frame["timestamp"].isna().any():
        _fail(raw, frame, frame["timestamp"].isna().to_numpy(), "missing or unparsable timestamp")
    if frame["symbol"].isna().any() or (frame["symbol"].astype(str).str.strip() == "").any():
        bad = (frame["symbol"].isna() | (frame["symbol"].astype(str).str.strip() == "")).to_numpy()
        _fail(raw, frame, bad, "missing symbol")

    _check_values(raw, frame)
    _check_order(raw, frame)
    if not (raw.adjusted or "adj_close" in frame.columns):
        _check_jumps(raw, frame, accept_jumps=accept_jumps, max_jump=max_jump)

    out = canonical_frame(frame)
    return out.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def _check_values(raw: RawBars, frame: pd.DataFrame) -> None:
    price_cols = ["close"] + ([] if raw.close_only else ["open", "high", "low"])
    if "adj_close" in frame.columns:
        price_cols.append("adj_close")
    if raw.close_only:
        for col in ("open", "high", "low"):
            if frame[col].notna().any():
                _fail(raw, frame, frame[col].notna().to_numpy(), f"close-only data has a value in '{col}'")
    for col in price_cols:
        values = frame[col].to_numpy(dtype="float64")
        _fail(raw, frame, np.isnan(values), f"NaN in '{col}'", "Prices are never back-filled; fix the input")
        _fail(raw, frame, np.isinf(values), f"infinite '{col}'")
        _fail(raw, frame, values <= 0, f"non-positive '{col}' (zero or negative price)")
    volume = frame["volume"].to_numpy(dtype="float64")
    if not np.isnan(volume).all():
        _fail(raw, frame, np.isnan(volume), "NaN in 'volume' (volume is missing on some rows only)")
        _fail(raw, frame, np.isinf(volume), "infinite 'volume'")
        _fail(raw, frame, volume < 0, "negative 'volume'")
        zero = int((volume == 0).sum())
        if zero:
            log.warning("%s: %d bars with zero volume (kept)", raw.origin, zero)
    if raw.close_only:
        return
    high, low = frame["high"].to_numpy(dtype="float64"), frame["low"].to_numpy(dtype="float64")
    _fail(raw, frame, high < low, "high < low")
    slack = OHLC_TOLERANCE * high
    for col in ("close", "open"):
        values = frame[col].to_numpy(dtype="float64")
        outside = (values > high + slack) | (values < low - slack)
        _fail(raw, frame, outside, f"{col} outside [low, high]")


def _check_order(raw: RawBars, frame: pd.DataFrame) -> None:
    ts = frame["timestamp"]
    dup = frame.duplicated(["symbol", "timestamp"], keep="first").to_numpy()
    _fail(raw, frame, dup, "duplicate timestamp")
    prev = ts.groupby(frame["symbol"], sort=False).shift(1)
    unsorted = (ts < prev).to_numpy()
    _fail(raw, frame, unsorted, "timestamps not in increasing order", "Sort the input by time")


def _check_jumps(raw: RawBars, frame: pd.DataFrame, *, accept_jumps: bool, max_jump: float) -> None:
    close = frame["close"]
    ret = (close / close.groupby(frame["symbol"], sort=False).shift(1) - 1.0).abs().to_numpy()
    jumps = np.nan_to_num(ret, nan=0.0) > max_jump
    if not jumps.any():
        return
    if accept_jumps:
        log.warning("%s: accepted %d one-bar moves over %.0f%%", raw.origin, int(jumps.sum()), 100 * max_jump)
        return
    _fail(
        raw,
        frame,
        jumps,
        f"one-bar close move over {max_jump:.0%} without an adjustment factor",
        "Unadjusted splits look like this: add an adj_close column (rltrade then trades split- and dividend-adjusted "
        "prices) or adjust the prices, or pass --accept-jumps if the move is real",
    )


def ohlc_columns_present(frame: pd.DataFrame) -> bool:
    """True when the frame has genuine open/high/low values (not a close-only table)."""
    return all(frame[c].notna().any() for c in PRICE_COLUMNS[:3])
