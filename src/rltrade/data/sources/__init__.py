"""Bar sources. Each turns one kind of input into :class:`~rltrade.data.schema.RawBars`.

A source is named by a specification string: ``sample:sp500``, ``csv:PATH``, ``yahoo``, ...
:func:`fetch` resolves it, then filters symbols and dates the same way for every source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from rltrade.data.schema import FREQUENCIES, RawBars
from rltrade.data.sources.samples import SAMPLES
from rltrade.errors import DataValidationError, SourceError, UnknownSymbolError


@dataclass(frozen=True)
class SourceInfo:
    """One line of ``rltrade data sources``."""

    spec: str
    description: str


def list_sources() -> list[SourceInfo]:
    """Every source specification a user can pass to ``rltrade data ingest``."""
    rows = [SourceInfo(f"sample:{name}", desc) for name, (_, desc) in SAMPLES.items()]
    rows += [
        SourceInfo("csv:PATH", "CSV in canonical columns symbol,timestamp,open,high,low,close,volume[,adj_close]"),
        SourceInfo("parquet:PATH", "Parquet in canonical columns"),
        SourceInfo("finrl:PATH", "FinRL processed CSV date,tic,open,high,low,close,volume,... (indicators ignored)"),
        SourceInfo("compustat:PATH", "Compustat daily datadate,tic,prccd,ajexdi[,prcod,prchd,prcld,cshtrd]"),
        SourceInfo("yahoo", "Yahoo Finance via yfinance (network; --symbols required)"),
        SourceInfo("alpaca", "Alpaca market data via alpaca-py (network; ALPACA_API_KEY/ALPACA_SECRET_KEY)"),
    ]
    return rows


def fetch(
    spec: str,
    symbols: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    freq: str | None = None,
    tz: str = "UTC",
) -> list[RawBars]:
    """Resolve ``spec`` and return its bars, restricted to ``symbols`` and [start, end].

    Parameters
    ----------
    spec:
        Source specification (see :func:`list_sources`). Files may be gzip-compressed.
    symbols:
        Symbols to keep; an unknown one raises :class:`~rltrade.errors.UnknownSymbolError`.
    start, end:
        Inclusive date bounds.
    freq:
        Wanted frequency; ``None`` takes the source's own.
    tz:
        Time zone of naive timestamps in files (default UTC).
    """
    if freq is not None and freq not in FREQUENCIES:
        raise SourceError(f"unknown frequency {freq!r}; use one of {', '.join(FREQUENCIES)}")
    kind, _, arg = spec.partition(":")
    if kind == "sample":
        if arg not in SAMPLES:
            raise SourceError(f"unknown sample {arg!r}; available: {', '.join('sample:' + s for s in SAMPLES)}")
        batches = SAMPLES[arg][0]()
        native = batches[0].freq
        if freq is not None and freq != native:
            raise SourceError(f"{spec} provides {native} bars only; drop --freq or pass --freq {native}")
    elif kind in ("csv", "parquet", "finrl", "compustat"):
        if not arg:
            raise SourceError(f"{kind}: needs a path, e.g. {kind}:prices.csv")
        from rltrade.data.sources import files

        if kind in ("csv", "parquet"):
            batches = [files.read_canonical(arg, reader=kind, freq=freq, tz=tz)]
        elif kind == "finrl":
            batches = [files.read_finrl(arg, freq=freq)]
        else:
            batches = [files.read_compustat(arg, freq=freq)]
    elif kind in ("yahoo", "alpaca"):
        if not symbols:
            raise SourceError(f"{kind} needs --symbols (for example --symbols AAPL,MSFT)")
        return _fetch_network(kind, list(symbols), start, end, freq or "1d")
    else:
        known = ", ".join(s.spec for s in list_sources())
        raise SourceError(f"unknown source {spec!r}; known sources: {known}")
    return _restrict(batches, spec, symbols, start, end)


def _fetch_network(kind: str, symbols: list[str], start: str | None, end: str | None, freq: str) -> list[RawBars]:
    if kind == "yahoo":
        from rltrade.data.sources.yahoo import fetch_yahoo

        return fetch_yahoo(symbols, start, end, freq)
    from rltrade.data.sources.alpaca import fetch_alpaca

    return fetch_alpaca(symbols, start, end, freq)


def _restrict(
    batches: list[RawBars], spec: str, symbols: Sequence[str] | None, start: str | None, end: str | None
) -> list[RawBars]:
    available = sorted({s for b in batches for s in b.symbols})
    if symbols:
        unknown = [s for s in symbols if s not in available]
        if unknown:
            raise UnknownSymbolError(f"{spec} has no symbol {', '.join(unknown)}; it has {', '.join(available)}")
    out = []
    for batch in batches:
        frame = batch.frame
        keep = frame["symbol"].isin(symbols) if symbols else pd.Series(True, index=frame.index)
        if start is not None:
            keep &= frame["timestamp"] >= pd.Timestamp(start, tz="UTC")
        if end is not None:
            keep &= frame["timestamp"] < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
        if keep.all():
            out.append(batch)
        elif keep.any():
            out.append(
                RawBars(
                    frame.loc[keep].reset_index(drop=True), batch.origin, batch.freq, batch.close_only, batch.adjusted
                )
            )
    if not out:
        raise DataValidationError(f"{spec}: no bars for {', '.join(symbols or available)} between {start} and {end}")
    return out
