"""Bar sources. Each turns one kind of input into :class:`~rltrade.data.schema.RawBars`.

A source is named by a specification string: ``sample:sp500``, ``csv:PATH``, ``yahoo``, ...
:func:`fetch` resolves it and keeps the wanted symbols and dates the same way for every source.
File sources select while reading, before they check any value: only the kept rows are checked,
so a bad row of a symbol nobody asked for does not block an ingest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rltrade.data.schema import FREQUENCIES, RawBars, in_date_range
from rltrade.data.sources.samples import SAMPLES
from rltrade.errors import DataValidationError, SourceError, UnknownSymbolError

#: Source kinds that read a file (``KIND:PATH``); each keeps the wanted rows before checking values.
FILE_SOURCES: tuple[str, ...] = ("csv", "parquet", "yahoo-csv", "finrl", "compustat")


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
        SourceInfo("yahoo-csv:PATH", "Yahoo's CSV download Date,Open,High,Low,Close,Adj Close,Volume (--symbols NAME)"),
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
    elif kind in FILE_SOURCES:
        if not arg:
            raise SourceError(f"{kind}: needs a path, e.g. {kind}:prices.csv")
        from rltrade.data.sources import files

        wanted = list(symbols) if symbols else None
        if kind in ("csv", "parquet"):
            batches = [files.read_canonical(arg, reader=kind, freq=freq, tz=tz, symbols=wanted, start=start, end=end)]
        elif kind == "yahoo-csv":
            batches = [files.read_yahoo_csv(arg, symbols=wanted, freq=freq, tz=tz, start=start, end=end)]
        elif kind == "finrl":
            batches = [files.read_finrl(arg, freq=freq, symbols=wanted, start=start, end=end)]
        else:
            batches = [files.read_compustat(arg, freq=freq, symbols=wanted, start=start, end=end)]
        return _restrict(batches, spec, symbols, start, end, selected=True)
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
    batches: list[RawBars],
    spec: str,
    symbols: Sequence[str] | None,
    start: str | None,
    end: str | None,
    *,
    selected: bool = False,
) -> list[RawBars]:
    """Keep ``symbols`` between ``start`` and ``end``; ``selected``: a file source already did (and checked symbols)."""
    batches = [b for b in batches if len(b.frame)]
    available = sorted({s for b in batches for s in b.symbols})
    if symbols and not selected:
        unknown = [s for s in symbols if s not in available]
        if unknown:
            raise UnknownSymbolError(f"{spec} has no symbol {', '.join(unknown)}; it has {', '.join(available)}")
    out = []
    for batch in batches:
        frame = batch.frame
        keep = in_date_range(frame["timestamp"], start, end)
        if symbols:
            keep &= frame["symbol"].isin(symbols).to_numpy()
        if keep.all():
            out.append(batch)
        elif keep.any():
            out.append(
                RawBars(
                    frame.loc[keep].reset_index(drop=True), batch.origin, batch.freq, batch.close_only, batch.adjusted
                )
            )
    if not out:
        wanted = ", ".join(symbols or available) or "any symbol"
        raise DataValidationError(f"{spec}: no bars for {wanted} between {start} and {end}")
    return out
