"""Alpaca market-data bars through alpaca-py (network source ``alpaca``).

Bars are requested with ``adjustment=all`` (split and dividend adjusted), so the result has
``adjusted=True`` and no ``adj_close``. Daily bars, which Alpaca stamps at midnight New York
time, are re-stamped at 00:00 UTC of the session date; intraday bars keep their UTC start.

Keys come from the environment: ``ALPACA_API_KEY`` and ``ALPACA_SECRET_KEY``.
alpaca-py is imported inside :func:`fetch_alpaca`, so importing this module costs nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any
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

if TYPE_CHECKING:
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.data.requests import StockBarsRequest

log = logging.getLogger(__name__)

KEY_VARIABLES: tuple[str, str] = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")
DEFAULT_HOST = "data.alpaca.markets"
#: Alpaca's stock history starts in 2016; used when ``start`` is None.
EARLIEST_START = "2016-01-01"
#: rltrade frequency -> name of the alpaca-py ``TimeFrame`` constant.
ALPACA_TIMEFRAMES: dict[str, str] = {"1d": "Day", "1h": "Hour", "1min": "Minute"}
_EXCHANGE_TZ = "America/New_York"
#: Seconds allowed to open a connection (a black-holed network fails after this, not minutes).
CONNECT_TIMEOUT_S = 5.0


def fetch_alpaca(
    symbols: Sequence[str],
    start: str | None,
    end: str | None,
    freq: str,
    *,
    url_override: str | None = None,
    feed: str | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    timeout: float = 30.0,
) -> list[RawBars]:
    """Download adjusted bars from Alpaca, one :class:`RawBars` per symbol.

    Parameters
    ----------
    symbols:
        US stock symbols; upper-cased, duplicates dropped. All are fetched in one paginated
        request.
    start, end:
        First and last day wanted, both inclusive (``YYYY-MM-DD``). ``start=None`` means
        2016-01-01 (the start of Alpaca's history); ``end=None`` means up to now.
    freq:
        ``1d``, ``1h`` or ``1min``.
    url_override:
        Base URL instead of ``https://data.alpaca.markets`` (a proxy, or a test server).
    feed:
        Alpaca data feed (``iex``, ``sip``, ``delayed_sip``, ...); ``None`` lets Alpaca pick the
        best feed the account may use. Free accounts may need ``iex`` for recent data.
    retry:
        Attempts and backoff for transient failures (HTTP 429/5xx, timeouts). A retry restarts
        the pagination from the first page.
    timeout:
        Seconds to wait for one HTTP response (connecting is given at most
        :data:`CONNECT_TIMEOUT_S`). alpaca-py itself never times out.

    Returns
    -------
    list[RawBars]
        ``origin="alpaca"``, ``adjusted=True``, canonical columns, in the order of ``symbols``.

    Raises
    ------
    SourceError
        The keys are not set (the message names the variables), Alpaca rejected them, or
        Alpaca kept failing.
    UnknownSymbolError
        Alpaca returned no bars for a symbol (the message names every such symbol).
    NetworkUnavailableError
        Alpaca cannot be reached (offline, DNS failure).
    """
    if freq not in ALPACA_TIMEFRAMES:
        raise SourceError(f"alpaca: unknown frequency {freq!r}; use one of {', '.join(ALPACA_TIMEFRAMES)}")
    wanted = clean_symbols(symbols, "alpaca")
    lo, hi = day_window(start, end)
    api_key, secret_key = _keys()
    from rltrade._optional import require

    require("alpaca", "network", "the alpaca source")
    from alpaca.data.enums import Adjustment, DataFeed
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame

    try:
        data_feed = DataFeed(feed) if feed is not None else None
    except ValueError as exc:
        choices = ", ".join(f.value for f in DataFeed)
        raise SourceError(f"alpaca: unknown feed {feed!r}; use one of {choices}") from exc
    client = StockHistoricalDataClient(api_key=api_key, secret_key=secret_key, url_override=url_override)
    _apply_timeout(client, timeout)
    request = StockBarsRequest(
        symbol_or_symbols=wanted,
        timeframe=getattr(TimeFrame, ALPACA_TIMEFRAMES[freq]),
        start=(lo if lo is not None else pd.Timestamp(EARLIEST_START, tz="UTC")).to_pydatetime(),
        end=hi.to_pydatetime() if hi is not None else None,
        adjustment=Adjustment.ALL,
        feed=data_feed,
    )
    host = (urlsplit(url_override).netloc or url_override) if url_override else DEFAULT_HOST
    shown = ",".join(wanted[:5]) + (f",... ({len(wanted)} symbols)" if len(wanted) > 5 else "")
    bars_by_symbol = retry_call(
        lambda: _get_bars(client, request),
        what=f"alpaca, {shown} {freq} bars",
        host=host,
        policy=retry,
    )

    out: list[RawBars] = []
    missing: list[str] = []
    for sym in wanted:
        frame = in_window(_canonical(bars_by_symbol.get(sym, []), sym, freq), lo, hi)
        if frame.empty:
            missing.append(sym)
            continue
        log.info("alpaca: %d %s bars for %s", len(frame), freq, sym)
        out.append(RawBars(frame=frame, origin="alpaca", freq=freq, close_only=False, adjusted=True))
    if missing:
        raise UnknownSymbolError(
            f"alpaca returned no {freq} bars for {', '.join(missing)} between {start or EARLIEST_START} and "
            f"{end or 'now'}; check the symbol(s) (US stocks and ETFs only) and the dates"
        )
    return out


def _keys() -> tuple[str, str]:
    """The API key pair from the environment, or a SourceError naming what to set."""
    values = {name: os.environ.get(name, "").strip() for name in KEY_VARIABLES}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise SourceError(
            f"alpaca needs API keys: set {' and '.join(missing)} in the environment "
            f"(both {KEY_VARIABLES[0]} and {KEY_VARIABLES[1]} are required; free keys at alpaca.markets), "
            "or use the yahoo or a file/sample source"
        )
    return values[KEY_VARIABLES[0]], values[KEY_VARIABLES[1]]


def _apply_timeout(client: StockHistoricalDataClient, timeout: float) -> None:
    """Give the client's ``requests`` session a timeout (alpaca-py sets none, so a stalled
    connection would hang forever).

    alpaca-py keeps the session in the private ``_session`` attribute and calls its
    ``request`` without a timeout; if a release changes that, the client keeps its own behaviour.
    """
    session = getattr(client, "_session", None)
    if session is None or not callable(getattr(session, "request", None)):
        log.debug("alpaca-py client has no requests session; HTTP timeout not applied")
        return
    session.request = partial(session.request, timeout=(min(CONNECT_TIMEOUT_S, timeout), timeout))


def _get_bars(client: StockHistoricalDataClient, request: StockBarsRequest) -> dict[str, list[Any]]:
    """All pages of one bars request, keyed by symbol; 4xx answers become typed errors."""
    from alpaca.common.exceptions import APIError

    try:
        barset = client.get_stock_bars(request)
    except APIError as exc:
        status = http_status(exc)
        if status is None or status == 429 or status >= 500:
            raise  # transient or unknown: retry_call decides
        detail = " ".join(str(exc).split())[:300]
        if status in (401, 403):
            raise SourceError(
                f"alpaca refused the request (HTTP {status}: {detail}); check {KEY_VARIABLES[0]} and "
                f"{KEY_VARIABLES[1]}, and that your plan covers the feed "
                "(free plans read the IEX feed: feed='iex')"
            ) from exc
        if "symbol" in detail.lower():
            message = f"alpaca does not know a requested symbol (HTTP {status}: {detail})"
            raise UnknownSymbolError(message) from exc
        raise SourceError(f"alpaca rejected the request (HTTP {status}: {detail})") from exc
    if isinstance(barset, dict):  # only with raw_data=True, which this module never sets
        raise SourceError("alpaca-py returned raw data where a BarSet was expected")
    return {str(sym): list(bars) for sym, bars in barset.data.items()}


def _canonical(bars: list[Any], sym: str, freq: str) -> pd.DataFrame:
    """alpaca-py ``Bar`` models -> canonical frame."""
    stamps = pd.DatetimeIndex([pd.Timestamp(bar.timestamp) for bar in bars])
    if len(stamps) and stamps.tz is None:
        stamps = stamps.tz_localize("UTC")
    if len(stamps):
        stamps = stamps.tz_convert("UTC")
        if freq == "1d":
            # Alpaca stamps a daily bar at midnight New York: keep that session date, at 00:00 UTC.
            local = stamps.tz_convert(_EXCHANGE_TZ).tz_localize(None).normalize()
            stamps = pd.DatetimeIndex(local).tz_localize("UTC")
    frame = pd.DataFrame(
        {
            "symbol": sym,
            "timestamp": stamps,
            "open": [bar.open for bar in bars],
            "high": [bar.high for bar in bars],
            "low": [bar.low for bar in bars],
            "close": [bar.close for bar in bars],
            "volume": [bar.volume for bar in bars],
        }
    )
    return canonical_frame(frame)
