"""Yahoo Finance bars through yfinance (network source ``yahoo``).

Prices are raw (not adjusted); ``adj_close`` is Yahoo's "Adj Close" (split and dividend
adjusted), so consumers can adjust themselves. Daily bars are stamped at 00:00 UTC of the
session date; intraday bars keep their UTC start time. ``start``/``end`` are inclusive calendar
days, the same as for every other source: Yahoo is asked for [start, end + 1 day) in exchange
time, and the result is then cut to those days in UTC.

yfinance is imported inside :func:`fetch_yahoo`, so importing this module costs nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from rltrade.data.schema import RawBars, canonical_frame
from rltrade.data.sources._http import (
    DEFAULT_RETRY,
    RetryPolicy,
    clean_symbols,
    day_window,
    http_status,
    in_window,
    retry_call,
)
from rltrade.errors import SourceError, UnknownSymbolError

log = logging.getLogger(__name__)

#: rltrade frequency -> yfinance interval.
YAHOO_INTERVALS: dict[str, str] = {"1d": "1d", "1h": "1h", "1min": "1m"}
DEFAULT_HOST = "query2.finance.yahoo.com"


def fetch_yahoo(
    symbols: Sequence[str],
    start: str | None,
    end: str | None,
    freq: str,
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
    timeout: float = 10.0,
) -> list[RawBars]:
    """Download bars from Yahoo Finance, one :class:`RawBars` per symbol.

    Parameters
    ----------
    symbols:
        Yahoo tickers (``SPY``, ``BRK-B``, ``^GSPC``); upper-cased, duplicates dropped.
    start, end:
        First and last day wanted, both inclusive (``YYYY-MM-DD``). ``start=None`` asks for as
        much history as Yahoo keeps for ``freq``; ``end=None`` means up to now.
    freq:
        ``1d``, ``1h`` or ``1min``. Yahoo keeps about 730 days of hourly and 30 days of
        one-minute bars.
    retry:
        Attempts and backoff for transient failures (rate limits, timeouts, 5xx).
    timeout:
        Seconds yfinance waits for one HTTP response.

    Returns
    -------
    list[RawBars]
        ``origin="yahoo"``, ``adjusted=False``, canonical columns plus ``adj_close``.

    Raises
    ------
    UnknownSymbolError
        Yahoo has no such symbol (or no bars for it in the window).
    NetworkUnavailableError
        Yahoo cannot be reached (offline, DNS failure).
    SourceError
        Bad arguments, or Yahoo kept failing or refused the request.
    """
    if freq not in YAHOO_INTERVALS:
        raise SourceError(f"yahoo: unknown frequency {freq!r}; use one of {', '.join(YAHOO_INTERVALS)}")
    wanted = clean_symbols(symbols, "yahoo")
    lo, hi = day_window(start, end)
    from rltrade._optional import require

    require("yfinance", "network", "the yahoo source")
    import yfinance.const

    host = urlsplit(getattr(yfinance.const, "_BASE_URL_", "")).hostname or DEFAULT_HOST
    out: list[RawBars] = []
    with _yfinance_raises():
        for sym in wanted:
            history = retry_call(
                partial(_history, sym, lo, hi, freq, start, end, timeout),
                what=f"yahoo, {sym} {freq} bars",
                host=host,
                policy=retry,
                is_transient=_is_yahoo_transient,
                on_retry=_forget_cached_responses,
            )
            frame = in_window(_canonical(history, sym, freq), lo, hi)
            if frame.empty:
                raise UnknownSymbolError(_no_bars(sym, freq, start, end, "none inside the window"))
            log.info("yahoo: %d %s bars for %s", len(frame), freq, sym)
            out.append(RawBars(frame=frame, origin="yahoo", freq=freq, close_only=False, adjusted=False))
    return out


def _history(
    sym: str,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    freq: str,
    start: str | None,
    end: str | None,
    timeout: float,
) -> pd.DataFrame:
    """One symbol's ``Ticker.history`` frame; Yahoo's "no such symbol" becomes UnknownSymbolError."""
    import yfinance as yf
    from yfinance.exceptions import YFPricesMissingError, YFTickerMissingError

    window: dict[str, Any] = {"end": hi.strftime("%Y-%m-%d")} if hi is not None else {}
    if lo is not None:
        window["start"] = lo.strftime("%Y-%m-%d")
    else:
        window["period"] = "max"
    try:
        history = yf.Ticker(sym).history(
            interval=YAHOO_INTERVALS[freq],
            auto_adjust=False,
            back_adjust=False,
            actions=False,
            repair=False,
            prepost=False,
            keepna=False,
            timeout=timeout,
            **window,
        )
    except YFPricesMissingError as exc:
        reason = exc.yahoo_reason or ""
        if "range" in reason.lower() or "within the last" in reason.lower():
            raise SourceError(
                f"yahoo refuses {freq} bars for {sym} between {start} and {end}: {reason}; "
                "Yahoo keeps about 30 days of 1min and 730 days of 1h bars"
            ) from exc
        raise UnknownSymbolError(_no_bars(sym, freq, start, end, str(exc))) from exc
    except YFTickerMissingError as exc:
        raise UnknownSymbolError(_no_bars(sym, freq, start, end, str(exc))) from exc
    except Exception as exc:
        if http_status(exc) == 404:
            detail = f"HTTP 404 from {_url_of(exc)}"
            raise UnknownSymbolError(_no_bars(sym, freq, start, end, detail)) from exc
        raise
    if history is None or history.empty:
        raise UnknownSymbolError(_no_bars(sym, freq, start, end, "empty answer"))
    return history


def _canonical(history: pd.DataFrame, sym: str, freq: str) -> pd.DataFrame:
    """yfinance's frame (exchange-local DatetimeIndex, capitalised columns) -> canonical frame."""
    index = pd.DatetimeIndex(history.index)
    if index.tz is None:  # yfinance always localises; be safe anyway
        index = index.tz_localize("UTC")
    if freq == "1d":
        # Session date at 00:00 UTC (the local wall-clock date, not the UTC date of the open).
        stamps = pd.DatetimeIndex(index.tz_localize(None).normalize()).tz_localize("UTC")
    else:
        stamps = index.tz_convert("UTC")
    frame = pd.DataFrame(
        {
            "symbol": sym,
            "timestamp": stamps,
            "open": history["Open"].to_numpy(),
            "high": history["High"].to_numpy(),
            "low": history["Low"].to_numpy(),
            "close": history["Close"].to_numpy(),
            "volume": history["Volume"].to_numpy(),
            "adj_close": history.get("Adj Close", history["Close"]).to_numpy(),
        }
    )
    return canonical_frame(frame)


@contextmanager
def _yfinance_raises() -> Iterator[None]:
    """Make yfinance raise its errors instead of logging them and returning an empty frame.

    yfinance's ``raise_errors=True`` is deprecated in favour of this global switch, which is
    restored on exit. (Not thread-safe: do not fetch from Yahoo in two threads at once.)
    """
    from yfinance.config import YfConfig

    previous = YfConfig.debug.hide_exceptions
    YfConfig.debug.hide_exceptions = False
    try:
        yield
    finally:
        YfConfig.debug.hide_exceptions = previous


def _is_yahoo_transient(exc: BaseException) -> bool:
    """yfinance-specific retryable failures: rate limit, "Yahoo is down", an error page for JSON."""
    from yfinance.exceptions import YFDataException, YFRateLimitError

    if isinstance(exc, YFRateLimitError | json.JSONDecodeError):
        return True
    return isinstance(exc, YFDataException) and "currently down" in str(exc).lower()


def _forget_cached_responses(attempt: int, exc: BaseException) -> None:
    """Drop yfinance's in-memory response cache so a retry asks Yahoo again.

    yfinance memoises GETs for past date ranges, error responses included; without this a
    retry would replay the failed answer.
    """
    from yfinance.data import YfData

    cache_clear = getattr(YfData.cache_get, "cache_clear", None)
    if cache_clear is not None:
        cache_clear()


def _no_bars(sym: str, freq: str, start: str | None, end: str | None, detail: str) -> str:
    return (
        f"yahoo has no {freq} bars for {sym} between {start or 'the beginning'} and {end or 'now'} "
        f"({detail}); "
        "check the symbol (Yahoo spelling, e.g. BRK-B, ^GSPC) and the dates"
    )


def _url_of(exc: BaseException) -> str:
    """The URL (without query string, which carries the crumb) of the failed response."""
    response = getattr(exc, "response", None)
    url = urlsplit(str(getattr(response, "url", "") or ""))
    return f"{url.netloc}{url.path}" if url.netloc else "yahoo"
