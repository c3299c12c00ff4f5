"""Level-I order-book features at decision times: order flow imbalance, book ratio, spread.

All three are read from an :class:`~rltrade.data.ticks.schema.Events` table (every row carries
the best bid/ask *after* its event) and are strictly causal: the value at a decision time ``t``
uses only the events with ``ts <= t``. Everything is vectorised numpy (a cumulative sum and
``searchsorted``), so this module is also the "numpy floor" of the replay benchmark.

- **Order flow imbalance** (Cont, Kukanov & Stoikov 2014). Event ``n`` contributes

  ``e_n = 1{P^B_n >= P^B_{n-1}} q^B_n - 1{P^B_n <= P^B_{n-1}} q^B_{n-1}
  - 1{P^A_n <= P^A_{n-1}} q^A_n + 1{P^A_n >= P^A_{n-1}} q^A_{n-1}``

  (``P`` best prices, ``q`` their sizes, after events ``n`` and ``n-1``); the first event of the
  table has no predecessor and contributes 0. ``OFI(t)`` sums ``e_n`` over the events with
  ``ts`` in the trailing window ``(t - window, t]`` (default 10 s). Events sharing a timestamp
  each contribute (the paper's per-event definition).
- **Book ratio** ``q^B / q^A`` of the last event at or before ``t``, and its log.
- **Spread** ``(P^A - P^B) / tick`` in ticks (default tick: 1 cent, 100 in price x 10^4).
- **Mid** ``(P^A + P^B) / 2`` in dollars.

A side with no displayed size (an empty book side; LOBSTER writes ``±9999999999`` with size 0
there) makes the ratio, its log, the spread and the mid NaN at that time, as does a decision time
before the first event. OFI needs no such care: an empty side contributes its size, 0.

By default the sizes are the market as replayed. :class:`OwnOrders` adds an agent's own resting
orders (per event: price and size of its bid and ask, e.g. recorded by
:class:`rltrade.envs.orderbook.Replay` with ``record_own=True``): an own order adds its size to
the displayed size when it rests at the displayed best price (an own order better than the
displayed best, alone at its price, is not shown: the displayed best price is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rltrade.data.ticks.schema import PRICE_SCALE, Events
from rltrade.features.base import FeatureError

DEFAULT_OFI_WINDOW_NS = 10_000_000_000
DEFAULT_TICK = 100  # 1 cent in price x 10^4

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

FEATURE_COLUMNS: tuple[str, ...] = ("ofi", "book_ratio", "log_book_ratio", "spread_ticks", "mid")


@dataclass(frozen=True)
class OwnOrders:
    """An agent's own resting orders after each event (size 0: none on that side).

    Arrays of int64, one value per event of the table they go with; prices x 10^4.
    """

    bid_price: IntArray
    bid_size: IntArray
    ask_price: IntArray
    ask_size: IntArray


def ofi_contributions(bid_price: Any, bid_size: Any, ask_price: Any, ask_size: Any) -> IntArray:
    """Per-event OFI contributions ``e_n`` (shares, int64) of Cont, Kukanov & Stoikov (2014).

    ``e_0 = 0``: the first event has no previous book to compare with.
    """
    pb, qb = np.asarray(bid_price, dtype=np.int64), np.asarray(bid_size, dtype=np.int64)
    pa, qa = np.asarray(ask_price, dtype=np.int64), np.asarray(ask_size, dtype=np.int64)
    e = np.zeros(pb.shape[0], dtype=np.int64)
    if pb.shape[0] > 1:
        pb0, pb1, qb0, qb1 = pb[:-1], pb[1:], qb[:-1], qb[1:]
        pa0, pa1, qa0, qa1 = pa[:-1], pa[1:], qa[:-1], qa[1:]
        e[1:] = (
            np.where(pb1 >= pb0, qb1, 0)
            - np.where(pb1 <= pb0, qb0, 0)
            - np.where(pa1 <= pa0, qa1, 0)
            + np.where(pa1 >= pa0, qa0, 0)
        )
    return e


def trailing_sum(ts: Any, values: Any, times: Any, window_ns: int) -> NDArray[Any]:
    """``sum(values[n] for ts[n] in (t - window_ns, t])`` at each ``t`` of ``times``.

    ``ts`` must be sorted (non-decreasing); ``times`` may be in any order. The sums are exact
    for integer values (prefix sums in the values' own dtype).
    """
    if window_ns <= 0:
        raise FeatureError(f"trailing_sum: window_ns must be > 0, got {window_ns}")
    ts, values, times = np.asarray(ts), np.asarray(values), np.asarray(times, dtype=np.int64)
    prefix = np.zeros(values.shape[0] + 1, dtype=values.dtype)
    np.cumsum(values, out=prefix[1:])
    hi = np.searchsorted(ts, times, side="right")
    lo = np.searchsorted(ts, times - window_ns, side="right")
    result: NDArray[Any] = prefix[hi] - prefix[lo]
    return result


def last_event_index(ts: Any, times: Any) -> IntArray:
    """Index of the last event with ``ts <= t`` for each decision time ``t`` (-1: none yet)."""
    return np.searchsorted(np.asarray(ts), np.asarray(times, dtype=np.int64), side="right").astype(np.int64) - 1


def _with_own(events: Events, own: OwnOrders | None) -> tuple[IntArray, IntArray]:
    """Bid and ask sizes, plus the agent's own orders resting at the displayed best price."""
    bid_size = np.asarray(events.bid_size, dtype=np.int64)
    ask_size = np.asarray(events.ask_size, dtype=np.int64)
    if own is None:
        return bid_size, ask_size
    n = len(events)
    for name in ("bid_price", "bid_size", "ask_price", "ask_size"):
        if np.asarray(getattr(own, name)).shape != (n,):
            raise FeatureError(f"OwnOrders.{name} must have one value per event ({n})")
    at_bid = (np.asarray(own.bid_size) > 0) & (np.asarray(own.bid_price) == events.bid_price)
    at_ask = (np.asarray(own.ask_size) > 0) & (np.asarray(own.ask_price) == events.ask_price)
    return (
        bid_size + np.where(at_bid, np.asarray(own.bid_size, dtype=np.int64), 0),
        ask_size + np.where(at_ask, np.asarray(own.ask_size, dtype=np.int64), 0),
    )


def orderbook_features(
    events: Events,
    times: Any,
    *,
    ofi_window_ns: int = DEFAULT_OFI_WINDOW_NS,
    tick: int = DEFAULT_TICK,
    own: OwnOrders | None = None,
) -> dict[str, FloatArray]:
    """OFI, book ratio, its log, spread (ticks) and mid (dollars) at each decision time.

    Parameters
    ----------
    events:
        One session's level-I events (``ts`` sorted).
    times:
        Decision times, int64 nanoseconds since the epoch (UTC).
    ofi_window_ns:
        Trailing OFI window: events with ``ts`` in ``(t - window, t]`` (default 10 s).
    tick:
        Tick size in price x 10^4 (default 100: one cent).
    own:
        The agent's own resting orders to add to the displayed sizes (default: the market only).

    Returns
    -------
    dict
        ``{column: float64 array aligned with times}`` for :data:`FEATURE_COLUMNS`.
    """
    if tick <= 0:
        raise FeatureError(f"orderbook_features: tick must be > 0, got {tick}")
    times = np.asarray(times, dtype=np.int64)
    ts = np.asarray(events.ts, dtype=np.int64)
    if ts.shape[0] > 1 and bool(np.any(ts[1:] < ts[:-1])):
        raise FeatureError(f"orderbook_features: {events.symbol} {events.date}: event times are not sorted")
    bid_size, ask_size = _with_own(events, own)
    e = ofi_contributions(events.bid_price, bid_size, events.ask_price, ask_size)
    ofi = trailing_sum(ts, e, times, ofi_window_ns).astype(np.float64)

    last = last_event_index(ts, times)
    seen = last >= 0
    at = np.where(seen, last, 0)
    if ts.shape[0] == 0:  # nothing happened: every book feature is unknown
        nan = np.full(times.shape[0], np.nan)
        return {
            "ofi": ofi,
            "book_ratio": nan,
            "log_book_ratio": nan.copy(),
            "spread_ticks": nan.copy(),
            "mid": nan.copy(),
        }
    qb = bid_size[at].astype(np.float64)
    qa = ask_size[at].astype(np.float64)
    pb = np.asarray(events.bid_price, dtype=np.int64)[at]
    pa = np.asarray(events.ask_price, dtype=np.int64)[at]
    two_sided = seen & (qb > 0) & (qa > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(two_sided, qb / np.where(qa > 0, qa, 1.0), np.nan)
        log_ratio = np.where(two_sided, np.log(np.where(two_sided, ratio, 1.0)), np.nan)
    spread = np.where(two_sided, (pa - pb) / float(tick), np.nan)
    mid = np.where(two_sided, (pa + pb) / (2.0 * PRICE_SCALE), np.nan)
    return {"ofi": ofi, "book_ratio": ratio, "log_book_ratio": log_ratio, "spread_ticks": spread, "mid": mid}


def orderbook_frame(
    events: Events,
    times: Any,
    *,
    ofi_window_ns: int = DEFAULT_OFI_WINDOW_NS,
    tick: int = DEFAULT_TICK,
    own: OwnOrders | None = None,
) -> pd.DataFrame:
    """:func:`orderbook_features` as a DataFrame indexed by the decision times (UTC, ``timestamp``)."""
    columns = orderbook_features(events, times, ofi_window_ns=ofi_window_ns, tick=tick, own=own)
    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(times, dtype=np.int64), utc=True), name="timestamp")
    return pd.DataFrame(columns, index=index)
