"""File sources: canonical CSV/Parquet, FinRL's processed CSV and the Compustat daily layout.

Every reader accepts gzip-compressed files (``.gz``) and fsspec URIs, numbers rows from 1 in
data order (``_row``) so validation errors can point at them, and returns :class:`RawBars`.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Sequence

import fsspec
import numpy as np
import pandas as pd

from rltrade.data.schema import RawBars
from rltrade.data.validate import OHLC_TOLERANCE, ROW_COLUMN
from rltrade.errors import DataValidationError, SourceError

log = logging.getLogger(__name__)

_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
# Share of rows with close outside [low, high] above which a FinRL file is taken to carry the
# adjusted close next to unadjusted open/high/low (a handful of rows is bad data instead).
FINRL_ADJUSTED_PATTERN_SHARE = 0.05
LOCAL_COLUMN = "_local"  # wall-clock time in the file's own zone, which gives daily bars their date


def _open_table(path: str, reader: str) -> pd.DataFrame:
    """Read a CSV or Parquet file (optionally gzip-compressed, local or fsspec URI)."""
    try:
        with fsspec.open(path, "rb", compression="infer") as fh:
            if reader == "parquet":
                return pd.read_parquet(fh)
            return pd.read_csv(fh)
    except FileNotFoundError as exc:
        raise SourceError(f"{path}: file not found") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(f"{path}: the file is empty (no header, no rows)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: cannot be read as {reader.upper()}: {exc}") from exc


def _require(frame: pd.DataFrame, columns: Sequence[str], origin: str, layout: str) -> None:
    present = [str(c) for c in frame.columns]
    missing = [c for c in columns if c not in present]
    if not missing:
        return
    hints = []
    for col in missing:
        close = difflib.get_close_matches(col, present, n=1, cutoff=0.6) or [
            p for p in present if p.lower() == col.lower()
        ]
        hints.append(f"'{col}'" + (f" (found '{close[0]}': misnamed?)" if close else ""))
    raise DataValidationError(
        f"{origin}: missing column {', '.join(hints)}; the {layout} layout needs {', '.join(columns)}; "
        f"the file has {', '.join(present) or 'no columns'}"
    )


def parse_timestamps(values: pd.Series, origin: str, tz: str = "UTC") -> tuple[pd.Series, pd.Series]:
    """Parse timestamp strings, refusing mixed time zones; return (UTC instants, local wall times).

    Naive timestamps are taken in ``tz``. A file may not mix naive and zoned timestamps, nor
    carry offsets more than one hour apart (one zone with daylight saving has two offsets one
    hour apart). The local wall times give daily bars their session date.
    """
    text = values.astype(str).str.strip()
    offsets = text.str.extract(_OFFSET, expand=False)
    aware = offsets.notna().to_numpy()
    rows = np.arange(1, len(text) + 1)
    if aware.any() and not aware.all():
        naive_rows, aware_rows = rows[~aware][:3].tolist(), rows[aware][:3].tolist()
        raise DataValidationError(
            f"{origin}: mixed time zones: rows {naive_rows} have no time zone while rows {aware_rows} "
            "have one; write every timestamp with the same zone"
        )
    if aware.all():
        minutes = offsets.str.replace("Z", "+00:00").map(_offset_minutes).to_numpy(dtype="int64")
        if minutes.max() - minutes.min() > 60:
            lo, hi = int(minutes.argmin()), int(minutes.argmax())
            raise DataValidationError(
                f"{origin}: mixed time zones: row {lo + 1} ({text.iat[lo]}) and row {hi + 1} ({text.iat[hi]}) "
                "have offsets more than one hour apart"
            )
    try:
        local = pd.to_datetime(text.str.replace(_OFFSET, "", regex=True), format="ISO8601", errors="coerce")
        if aware.all():
            utc = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        else:
            utc = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    except (ValueError, TypeError) as exc:
        raise DataValidationError(f"{origin}: cannot parse timestamps: {exc}") from exc
    bad = utc.isna().to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            f"{origin}: unparsable timestamp {text.iat[first]!r} at row {first + 1} ({int(bad.sum())} rows in all)"
        )
    return utc.astype("datetime64[ns, UTC]"), local


def _offset_minutes(offset: str) -> int:
    sign = -1 if offset.startswith("-") else 1
    digits = offset[1:].replace(":", "")
    return sign * (int(digits[:2]) * 60 + int(digits[2:]))


def infer_freq(frame: pd.DataFrame, origin: str, requested: str | None) -> str:
    """The bar frequency from the median spacing of timestamps, checked against ``requested``."""
    spacing = pd.Timedelta(frame.groupby("symbol", sort=False)["timestamp"].diff().median())
    if pd.isna(spacing):
        inferred = requested or "1d"
    elif spacing >= pd.Timedelta(hours=20):
        inferred = "1d"
    elif spacing >= pd.Timedelta(minutes=50):
        inferred = "1h"
    else:
        inferred = "1min"
    if requested is not None and requested != inferred:
        raise SourceError(
            f"{origin}: --freq {requested} was asked but the bars are {inferred} apart "
            f"(median spacing {spacing}); pass --freq {inferred}"
        )
    return inferred


def _finish(frame: pd.DataFrame, origin: str, freq: str | None, *, close_only: bool, adjusted: bool) -> RawBars:
    """Number the rows, settle the frequency and stamp daily bars at 00:00 UTC of their local date."""
    frame = frame.copy()
    frame[ROW_COLUMN] = np.arange(1, len(frame) + 1)
    resolved = infer_freq(frame, origin, freq) if len(frame) else (freq or "1d")
    local = frame.pop(LOCAL_COLUMN)
    if resolved == "1d":
        frame["timestamp"] = local.dt.normalize().dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    return RawBars(frame, origin, resolved, close_only=close_only, adjusted=adjusted)


def read_canonical(path: str, *, reader: str, freq: str | None = None, tz: str = "UTC") -> RawBars:
    """A CSV/Parquet file in canonical form: ``symbol, timestamp, [open, high, low,] close, [volume, adj_close]``.

    Without ``open/high/low`` the file is close-only. Without ``volume`` volume is NaN.
    """
    frame = _open_table(path, reader)
    _require(frame, ["symbol", "timestamp", "close"], path, "canonical")
    ohlc = [c for c in ("open", "high", "low") if c in frame.columns]
    if ohlc and len(ohlc) < 3:
        _require(frame, ["open", "high", "low"], path, "canonical (open, high and low go together)")
    close_only = not ohlc
    if len(frame) == 0:
        raise DataValidationError(f"{path}: the file has a header but no rows")
    out = pd.DataFrame({"symbol": frame["symbol"].astype(str)})
    if pd.api.types.is_datetime64_any_dtype(frame["timestamp"]):
        ts = pd.to_datetime(frame["timestamp"])
        ts = ts.dt.tz_localize(tz) if ts.dt.tz is None else ts
        out["timestamp"] = ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        out[LOCAL_COLUMN] = ts.dt.tz_localize(None)
    else:
        out["timestamp"], out[LOCAL_COLUMN] = parse_timestamps(frame["timestamp"], path, tz)
    for col in ("open", "high", "low", "close", "volume", "adj_close"):
        if col in frame.columns:
            out[col] = _numeric(frame[col], col, path)
        elif col != "adj_close":
            out[col] = np.nan
    return _finish(out, path, freq, close_only=close_only, adjusted=False)


def _numeric(values: pd.Series, col: str, origin: str) -> pd.Series:
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() & values.notna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(f"{origin}: non-numeric '{col}' value {values.iat[first]!r} at row {first + 1}")
    return parsed.astype("float64")


def read_finrl(path: str, *, freq: str | None = None) -> RawBars:
    """FinRL's processed CSV (``date, tic, open, high, low, close, volume, ...``).

    Extra indicator columns are ignored (rltrade recomputes features causally). FinRL writes
    the *adjusted* close into ``close`` next to *unadjusted* open/high/low, so close falls
    outside [low, high] on most rows. Such a file is recognised and kept close-only: ``close``
    is kept, open/high/low become NaN, and a warning says why. A consistent file keeps its OHLC.
    """
    frame = _open_table(path, "csv")
    _require(frame, ["date", "tic", "open", "high", "low", "close", "volume"], path, "FinRL")
    if len(frame) == 0:
        raise DataValidationError(f"{path}: the file has a header but no rows")
    out = pd.DataFrame({"symbol": frame["tic"].astype(str)})
    out["timestamp"], out[LOCAL_COLUMN] = parse_timestamps(frame["date"], path)
    for col in ("open", "high", "low", "close", "volume"):
        out[col] = _numeric(frame[col], col, path)
    slack = OHLC_TOLERANCE * out["high"]
    outside = (out["close"] > out["high"] + slack) | (out["close"] < out["low"] - slack)
    close_only = bool(outside.mean() > FINRL_ADJUSTED_PATTERN_SHARE)
    if close_only:
        log.warning(
            "%s: close lies outside [low, high] on %s of %s rows: FinRL stores the adjusted close next to "
            "unadjusted open/high/low. Keeping close (adjusted) and dropping open/high/low (close-only) so "
            "price scales are not mixed.",
            path,
            f"{int(outside.sum()):,}",
            f"{len(out):,}",
        )
        out[["open", "high", "low"]] = np.nan
    return _finish(out, path, freq, close_only=close_only, adjusted=True)


def read_compustat(path: str, *, freq: str | None = None) -> RawBars:
    """Compustat daily layout ``datadate, tic, prccd, ajexdi[, prcod, prchd, prcld, cshtrd]``.

    Prices are divided by the adjustment factor ``ajexdi`` (split-adjusted) and share volume
    is multiplied by it, so dollar volume is unchanged. Without ``prcod/prchd/prcld`` the data
    is close-only; other columns (``conm``, ...) are ignored.
    """
    frame = _open_table(path, "csv")
    _require(frame, ["datadate", "tic", "prccd", "ajexdi"], path, "Compustat")
    if len(frame) == 0:
        raise DataValidationError(f"{path}: the file has a header but no rows")
    present = [c for c in ("prcod", "prchd", "prcld") if c in frame.columns]
    if present and len(present) < 3:
        _require(frame, ["prcod", "prchd", "prcld"], path, "Compustat (prcod, prchd and prcld go together)")
    factor = _numeric(frame["ajexdi"], "ajexdi", path)
    bad = ~(factor > 0)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(
            f"{path}: adjustment factor ajexdi must be positive; "
            f"{frame['tic'].iat[first]} row {first + 1} has {factor.iat[first]}"
        )
    dates = frame["datadate"].astype(str).str.replace(r"\.0$", "", regex=True)
    out = pd.DataFrame({"symbol": frame["tic"].astype(str)})
    iso = dates.str.slice(0, 4) + "-" + dates.str.slice(4, 6) + "-" + dates.str.slice(6, 8)
    dates = dates.where(~dates.str.fullmatch(r"\d{8}"), iso)
    out["timestamp"], out[LOCAL_COLUMN] = parse_timestamps(dates, path)
    out["close"] = _numeric(frame["prccd"], "prccd", path) / factor
    for col, src in (("open", "prcod"), ("high", "prchd"), ("low", "prcld")):
        out[col] = _numeric(frame[src], src, path) / factor if present else np.nan
    out["volume"] = _numeric(frame["cshtrd"], "cshtrd", path) * factor if "cshtrd" in frame.columns else np.nan
    return _finish(out, path, freq, close_only=not present, adjusted=True)
