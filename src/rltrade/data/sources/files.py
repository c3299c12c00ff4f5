"""File sources: canonical CSV/Parquet, Yahoo's CSV download, FinRL's processed CSV and the Compustat daily layout.

Every reader accepts gzip-compressed files (``.gz``) and fsspec URIs, numbers rows from 1 in
data order (``_row``) so validation errors can point at them, and returns :class:`RawBars`.

Every reader selects before it checks: it keeps the wanted symbols (on the raw symbol column),
parses the timestamps of those rows only, keeps the wanted dates, and only then reads and checks
the values of what is kept. A bad value in a row nobody asked for (a junk ticker's missing
adjustment factor) never blocks an ingest; the same value in a kept row is refused with the
file, the symbol and the row.
"""

from __future__ import annotations

import difflib
import io
import logging
import re
from collections.abc import Sequence

import fsspec
import numpy as np
import pandas as pd

from rltrade.data.schema import RawBars, in_date_range
from rltrade.data.validate import OHLC_TOLERANCE, ROW_COLUMN
from rltrade.errors import DataValidationError, SourceError, UnknownSymbolError

log = logging.getLogger(__name__)

_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
# Share of rows with close outside [low, high] above which a FinRL file is taken to carry the
# adjusted close next to unadjusted open/high/low (a handful of rows is bad data instead).
FINRL_ADJUSTED_PATTERN_SHARE = 0.05
#: The header of a CSV downloaded from finance.yahoo.com (``Adj Close`` may be missing).
YAHOO_COLUMNS: tuple[str, ...] = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
MAX_LISTED_SYMBOLS = 20  # an unknown-symbol error lists at most this many of the file's symbols


def _open_table(path: str, reader: str) -> pd.DataFrame:
    """Read a CSV or Parquet file (optionally gzip-compressed, local or fsspec URI), rows numbered from 1."""
    try:
        with fsspec.open(path, "rb", compression="infer") as fh:
            # Arrow gets bytes, never a Python file: its pool threads releasing a Python file at
            # interpreter exit can abort the process (see BarStore._read_partition).
            frame = pd.read_parquet(io.BytesIO(fh.read())) if reader == "parquet" else pd.read_csv(fh)
    except FileNotFoundError as exc:
        raise SourceError(f"{path}: file not found") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(f"{path}: the file is empty (no header, no rows)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: cannot be read as {reader.upper()}: {exc}") from exc
    frame = frame.reset_index(drop=True)
    frame[ROW_COLUMN] = np.arange(1, len(frame) + 1)
    return frame


def _require(frame: pd.DataFrame, columns: Sequence[str], origin: str, layout: str) -> None:
    present = [str(c) for c in frame.columns if c != ROW_COLUMN]
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


def _require_rows(frame: pd.DataFrame, origin: str) -> None:
    if len(frame) == 0:
        raise DataValidationError(f"{origin}: the file has a header but no rows")


def parse_timestamps(
    values: pd.Series,
    origin: str,
    tz: str = "UTC",
    rows: np.ndarray | None = None,
    names: np.ndarray | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Parse timestamp strings, refusing mixed time zones; return (UTC instants, local wall times).

    Naive timestamps are taken in ``tz``. A file may not mix naive and zoned timestamps, nor
    carry offsets more than one hour apart (one zone with daylight saving has two offsets one
    hour apart). The local wall times give daily bars their session date. ``rows`` are the
    1-based data-row numbers errors name (default: positions in ``values``), ``names`` the
    symbols of those rows, named with an unparsable timestamp.
    """
    text = values.astype(str).str.strip()
    offsets = text.str.extract(_OFFSET, expand=False)
    aware = offsets.notna().to_numpy()
    rows = np.arange(1, len(text) + 1) if rows is None else np.asarray(rows)
    if aware.any() and not aware.all():
        naive_rows, aware_rows = rows[~aware][:3].tolist(), rows[aware][:3].tolist()
        raise DataValidationError(
            f"{origin}: mixed time zones: rows {naive_rows} have no time zone while rows {aware_rows} "
            "have one; write every timestamp with the same zone"
        )
    if aware.all() and len(text):
        minutes = offsets.str.replace("Z", "+00:00").map(_offset_minutes).to_numpy(dtype="int64")
        if minutes.max() - minutes.min() > 60:
            lo, hi = int(minutes.argmin()), int(minutes.argmax())
            raise DataValidationError(
                f"{origin}: mixed time zones: row {rows[lo]} ({text.iat[lo]}) and row {rows[hi]} ({text.iat[hi]}) "
                "have offsets more than one hour apart"
            )
    try:
        local = pd.to_datetime(text.str.replace(_OFFSET, "", regex=True), format="ISO8601", errors="coerce")
        if aware.all() and len(text):
            utc = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        else:
            utc = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    except (ValueError, TypeError) as exc:
        raise DataValidationError(f"{origin}: cannot parse timestamps: {exc}") from exc
    bad = utc.isna().to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        where = f"{names[first]} row {rows[first]}" if names is not None else f"row {rows[first]}"
        raise DataValidationError(
            f"{origin}: unparsable timestamp {text.iat[first]!r} at {where} ({int(bad.sum())} rows in all)"
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


def _keep_symbols(frame: pd.DataFrame, names: pd.Series, origin: str, symbols: Sequence[str] | None) -> pd.DataFrame:
    """The rows of ``symbols`` (every row when None); a symbol the file lacks is refused."""
    if not symbols:
        return frame
    available = sorted(names.unique().tolist())
    unknown = [s for s in symbols if s not in set(available)]
    if unknown:
        listed = ", ".join(available[:MAX_LISTED_SYMBOLS])
        more = f" and {len(available) - MAX_LISTED_SYMBOLS} more" if len(available) > MAX_LISTED_SYMBOLS else ""
        raise UnknownSymbolError(f"{origin} has no symbol {', '.join(unknown)}; it has {listed}{more}")
    return frame.loc[names.isin(list(symbols)).to_numpy()]


def _select(
    frame: pd.DataFrame,
    names: pd.Series,
    times: pd.Series,
    origin: str,
    *,
    symbols: Sequence[str] | None,
    start: str | None,
    end: str | None,
    freq: str | None,
    tz: str = "UTC",
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Keep the wanted rows before any value is read: ``(kept input rows, their bars so far, frequency)``.

    ``names`` (symbols) and ``times`` (raw timestamps) are aligned with ``frame``. The wanted
    symbols are kept first; the kept rows' timestamps are parsed, the frequency is settled and
    daily bars are stamped at 00:00 UTC of their local date; then [start, end] is applied. The
    bars so far hold ``symbol``, ``timestamp`` and ``_row`` (the input's row number), aligned
    with the kept input rows, whose value columns the caller reads next.
    """
    kept = _keep_symbols(frame, names, origin, symbols)
    rows = kept[ROW_COLUMN].to_numpy()
    out = pd.DataFrame({"symbol": names.loc[kept.index].astype(str).to_numpy()})
    stamps = times.loc[kept.index]
    if pd.api.types.is_datetime64_any_dtype(stamps):
        ts = pd.to_datetime(stamps)
        ts = ts.dt.tz_localize(tz) if ts.dt.tz is None else ts
        out["timestamp"] = ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").to_numpy()
        local = ts.dt.tz_localize(None)
    else:
        utc, local = parse_timestamps(stamps, origin, tz, rows=rows, names=out["symbol"].to_numpy())
        out["timestamp"] = utc.to_numpy()
    resolved = infer_freq(out, origin, freq) if len(out) else (freq or "1d")
    if resolved == "1d":
        out["timestamp"] = local.dt.normalize().dt.tz_localize("UTC").astype("datetime64[ns, UTC]").to_numpy()
    out[ROW_COLUMN] = rows
    wanted = in_date_range(out["timestamp"], start, end) | out["timestamp"].isna().to_numpy()
    return kept.loc[wanted].reset_index(drop=True), out.loc[wanted].reset_index(drop=True), resolved


def _numeric(values: pd.Series, col: str, origin: str, bars: pd.DataFrame) -> pd.Series:
    """``values`` as float64; a non-numeric entry is refused with the symbol and row of ``bars`` (aligned)."""
    parsed = pd.to_numeric(values, errors="coerce")
    bad = (parsed.isna() & values.notna()).to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataValidationError(f"{origin}: non-numeric '{col}' value {values.iat[first]!r} at {_at(bars, first)}")
    return pd.Series(parsed.to_numpy(dtype="float64"), index=bars.index)


def _at(bars: pd.DataFrame, i: int) -> str:
    """``AAPL row 17 (2016-03-04)``: where position ``i`` of ``bars`` is in the input."""
    ts = pd.DatetimeIndex(bars["timestamp"])[i]
    stamp = "NaT" if ts is pd.NaT else ts.isoformat().replace("T00:00:00+00:00", "")
    return f"{bars['symbol'].iat[i]} row {bars[ROW_COLUMN].iat[i]} ({stamp})"


def read_canonical(
    path: str,
    *,
    reader: str,
    freq: str | None = None,
    tz: str = "UTC",
    symbols: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> RawBars:
    """A CSV/Parquet file in canonical form: ``symbol, timestamp, [open, high, low,] close, [volume, adj_close]``.

    Without ``open/high/low`` the file is close-only. Without ``volume`` volume is NaN. A CSV
    with Yahoo's columns and no ``symbol`` column is refused with a pointer to ``yahoo-csv:``.
    Only the rows of ``symbols`` between ``start`` and ``end`` (inclusive) are read and checked.
    """
    frame = _open_table(path, reader)
    if reader == "csv" and "symbol" not in frame.columns and {"Date", "Close"} <= set(frame.columns):
        raise DataValidationError(
            f"{path}: looks like a Yahoo CSV ({', '.join(str(c) for c in frame.columns if c != ROW_COLUMN)}; "
            f"no symbol column): use yahoo-csv:{path} --symbols NAME"
        )
    _require(frame, ["symbol", "timestamp", "close"], path, "canonical")
    ohlc = [c for c in ("open", "high", "low") if c in frame.columns]
    if ohlc and len(ohlc) < 3:
        _require(frame, ["open", "high", "low"], path, "canonical (open, high and low go together)")
    _require_rows(frame, path)
    names = frame["symbol"].astype(str)
    rows, out, resolved = _select(
        frame, names, frame["timestamp"], path, symbols=symbols, start=start, end=end, freq=freq, tz=tz
    )
    for col in ("open", "high", "low", "close", "volume", "adj_close"):
        if col in rows.columns:
            out[col] = _numeric(rows[col], col, path, out)
        elif col != "adj_close":
            out[col] = np.nan
    return RawBars(out, path, resolved, close_only=not ohlc, adjusted=False)


def read_yahoo_csv(
    path: str,
    *,
    symbols: Sequence[str] | None,
    freq: str | None = None,
    tz: str = "UTC",
    start: str | None = None,
    end: str | None = None,
) -> RawBars:
    """A CSV as finance.yahoo.com's download gives it: ``Date, Open, High, Low, Close[, Adj Close], Volume``.

    The file names no symbol, so ``symbols`` must hold exactly one, which labels every row (it is
    not guessed from the file name). ``Adj Close`` becomes ``adj_close``; the prices are Yahoo's
    raw ones. The ``null`` Yahoo writes on missing days reads as NaN and is refused by validation
    with the row and timestamp, like any missing price.
    """
    if not symbols or len(symbols) != 1:
        got = f"got {len(symbols)}: {', '.join(symbols)}" if symbols else "got none"
        raise SourceError(
            f"yahoo-csv:{path} needs exactly one symbol, passed as --symbols NAME (e.g. --symbols DJI): a Yahoo CSV "
            f"has no symbol column and the name is not guessed from the file name; {got}"
        )
    symbol = str(symbols[0]).strip()
    frame = _open_table(path, "csv")
    _require(frame, ["Date", "Open", "High", "Low", "Close", "Volume"], path, "Yahoo CSV")
    _require_rows(frame, path)
    names = pd.Series(symbol, index=frame.index)
    rows, out, resolved = _select(
        frame, names, frame["Date"], path, symbols=None, start=start, end=end, freq=freq, tz=tz
    )
    for col, src in (("open", "Open"), ("high", "High"), ("low", "Low"), ("close", "Close"), ("volume", "Volume")):
        out[col] = _numeric(rows[src], src, path, out)
    if "Adj Close" in rows.columns:
        out["adj_close"] = _numeric(rows["Adj Close"], "Adj Close", path, out)
    return RawBars(out, path, resolved, close_only=False, adjusted=False)


def read_finrl(
    path: str,
    *,
    freq: str | None = None,
    symbols: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> RawBars:
    """FinRL's processed CSV (``date, tic, open, high, low, close, volume, ...``).

    Extra indicator columns are ignored (rltrade recomputes features causally). FinRL writes
    the *adjusted* close into ``close`` next to *unadjusted* open/high/low, so close falls
    outside [low, high] on most rows. Such a file is recognised and kept close-only: ``close``
    is kept, open/high/low become NaN, and a warning says why. A consistent file keeps its OHLC.
    The pattern is looked for in the kept rows (``symbols`` between ``start`` and ``end``).
    """
    frame = _open_table(path, "csv")
    _require(frame, ["date", "tic", "open", "high", "low", "close", "volume"], path, "FinRL")
    _require_rows(frame, path)
    names = frame["tic"].astype(str)
    rows, out, resolved = _select(frame, names, frame["date"], path, symbols=symbols, start=start, end=end, freq=freq)
    for col in ("open", "high", "low", "close", "volume"):
        out[col] = _numeric(rows[col], col, path, out)
    slack = OHLC_TOLERANCE * out["high"]
    outside = (out["close"] > out["high"] + slack) | (out["close"] < out["low"] - slack)
    close_only = bool(len(out) and outside.mean() > FINRL_ADJUSTED_PATTERN_SHARE)
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
    return RawBars(out, path, resolved, close_only=close_only, adjusted=True)


def read_compustat(
    path: str,
    *,
    freq: str | None = None,
    symbols: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> RawBars:
    """Compustat daily layout ``datadate, tic, prccd, ajexdi[, prcod, prchd, prcld, cshtrd]``.

    Prices are divided by the adjustment factor ``ajexdi`` (split-adjusted) and share volume
    is multiplied by it, so dollar volume is unchanged. Without ``prcod/prchd/prcld`` the data
    is close-only; other columns (``conm``, ...) are ignored. A missing or non-positive
    ``ajexdi`` is refused in the kept rows only (``symbols`` between ``start`` and ``end``).
    """
    frame = _open_table(path, "csv")
    _require(frame, ["datadate", "tic", "prccd", "ajexdi"], path, "Compustat")
    _require_rows(frame, path)
    present = [c for c in ("prcod", "prchd", "prcld") if c in frame.columns]
    if present and len(present) < 3:
        _require(frame, ["prcod", "prchd", "prcld"], path, "Compustat (prcod, prchd and prcld go together)")
    dates = frame["datadate"].astype(str).str.replace(r"\.0$", "", regex=True)
    iso = dates.str.slice(0, 4) + "-" + dates.str.slice(4, 6) + "-" + dates.str.slice(6, 8)
    dates = dates.where(~dates.str.fullmatch(r"\d{8}"), iso)
    names = frame["tic"].astype(str)
    rows, out, resolved = _select(frame, names, dates, path, symbols=symbols, start=start, end=end, freq=freq)
    factor = _numeric(rows["ajexdi"], "ajexdi", path, out)
    bad = ~(factor > 0).to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            f"{path}: adjustment factor ajexdi must be a positive number; "
            f"{_at(out, first)} has {factor.iat[first]} ({int(bad.sum())} rows in all)"
        )
    out["close"] = _numeric(rows["prccd"], "prccd", path, out) / factor
    for col, src in (("open", "prcod"), ("high", "prchd"), ("low", "prcld")):
        out[col] = _numeric(rows[src], src, path, out) / factor if present else np.nan
    out["volume"] = _numeric(rows["cshtrd"], "cshtrd", path, out) * factor if "cshtrd" in rows.columns else np.nan
    return RawBars(out, path, resolved, close_only=not present, adjusted=True)
