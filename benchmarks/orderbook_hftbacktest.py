"""hftbacktest 2.4.4 replaying a level-I session while quoting at the touch: the reference for rltrade's replay.

Runs INSIDE its own virtualenv (hftbacktest pins numpy < 2.3, which must never enter rltrade's install);
:mod:`hftbacktest_venv` creates that venv and calls this script. rltrade never imports it, and it imports
nothing of rltrade.

    python benchmarks/hftbacktest_venv.py MESSAGE.csv[.gz] ORDERBOOK.csv[.gz] [--repeats 3]
    python benchmarks/hftbacktest_venv.py SESSION.npz [--intervals 1 2]

Input: a LOBSTER level-1 message + orderbook CSV pair (the session date is read from the file name,
``TICKER_YYYY-MM-DD_...``, or given with ``--date``), or one ``.npz`` holding rltrade's level-I event
table (:data:`NPZ_ARRAYS`: ``ts`` int64 ns epoch, ``kind`` int8 1 submit / 2 partial cancel / 3 delete /
4 visible execution / 5 hidden execution / 7 halt / 10 quote update, ``order_id`` int64, ``size`` int64,
``price`` int64 (price x 10^4), ``side`` int8 (+1 bid / -1 ask resting order), ``ask_price``,
``ask_size``, ``bid_price``, ``bid_size`` int64, the level-I book after the event; a side is present
when its size is positive).

Conversion (not timed): hftbacktest's market-by-price depth events carrying the level-I book (each side
holds one level; when the touch moves, the new level is set before the old one is zeroed, so the book
never passes through an empty side), preceded on execution rows by a trade event (an execution of a
resting ask is a buyer-initiated trade). Its market-by-order (L3) mode is not used: a LOBSTER level-1
file carries only the messages that touch the best level, so orders resting deeper would be cancelled
or executed without ever having been added.

Strategy, in every variant: every ``interval`` seconds keep one 100-share post-only bid at the best bid
and one ask at the best ask; a quote off the touch is cancelled and re-sent at the touch, a filled one
is re-sent; a side is not quoted while the position is at the limit (+-100). The same Python function
runs compiled with ``numba.njit`` (hftbacktest's normal way) and interpreted, calling the backtester's
methods from Python one step at a time. ``njit_replay`` and ``python_replay`` only elapse through the
session reading the touch, without orders: the floor of each driver's cost.

Timing: wall clock of the strategy call alone (the backtester is built before the clock starts), best
of ``--repeats`` after one untimed warm-up run that compiles numba; process time is reported too.
Output: one JSON object on stdout (see :func:`main`); the fills and position of the njit variants go
to stderr as a sanity line.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hftbacktest
import numba
import numpy as np
from hftbacktest import (
    BUY_EVENT,
    DEPTH_EVENT,
    EXCH_EVENT,
    GTX,
    LIMIT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    BacktestAsset,
    HashMapMarketDepthBacktest,
    event_dtype,
)
from numba import njit

NPZ_ARRAYS: tuple[str, ...] = (
    "ts", "kind", "order_id", "size", "price", "side",
    "ask_price", "ask_size", "bid_price", "bid_size",
)  # fmt: skip
PRICE_SCALE = 10_000
EXECUTE, HIDDEN = 4, 5
NS_PER_S = 1_000_000_000
# hftbacktest's depth reports an empty side as these ticks (i64 min / max).
INVALID_MIN = np.iinfo(np.int64).min
INVALID_MAX = np.iinfo(np.int64).max
ASSET = 0


# --- input ------------------------------------------------------------------------------------------------


def session_midnight_ns(date: str, tz: str = "America/New_York") -> int:
    """Nanoseconds since the epoch of midnight of ``date`` (YYYY-MM-DD) in the exchange time zone."""
    midnight = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=ZoneInfo(tz))
    return int(midnight.timestamp()) * NS_PER_S


def read_lobster(message: Path, orderbook: Path, date: str | None = None) -> dict[str, np.ndarray]:
    """A LOBSTER level-1 message + orderbook pair as the :data:`NPZ_ARRAYS` columns.

    LOBSTER times are seconds after midnight (exchange time, nanosecond decimals); the session date
    comes from the file name unless ``date`` is given.
    """
    if date is None:
        found = re.search(r"_(\d{4}-\d{2}-\d{2})_", message.name)
        if found is None:
            raise SystemExit(f"no session date in {message.name}; pass --date YYYY-MM-DD")
        date = found.group(1)
    seconds = np.loadtxt(message, delimiter=",", usecols=0, dtype=np.float64, ndmin=1)
    fields = np.loadtxt(message, delimiter=",", usecols=(1, 2, 3, 4, 5), dtype=np.int64, ndmin=2)
    book = np.loadtxt(orderbook, delimiter=",", usecols=(0, 1, 2, 3), dtype=np.int64, ndmin=2)
    if len(book) != len(fields):
        raise SystemExit(f"{message.name} has {len(fields)} rows but {orderbook.name} has {len(book)}")
    return {
        "ts": session_midnight_ns(date) + np.rint(seconds * NS_PER_S).astype(np.int64),
        "kind": fields[:, 0].astype(np.int8),
        "order_id": fields[:, 1],
        "size": fields[:, 2],
        "price": fields[:, 3],
        "side": fields[:, 4].astype(np.int8),
        "ask_price": book[:, 0],
        "ask_size": book[:, 1],
        "bid_price": book[:, 2],
        "bid_size": book[:, 3],
    }


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The :data:`NPZ_ARRAYS` of an ``.npz``, refused when one is missing or their lengths differ."""
    with np.load(path) as archive:
        missing = [name for name in NPZ_ARRAYS if name not in archive]
        if missing:
            raise SystemExit(f"{path} lacks the arrays {missing}")
        columns = {name: np.asarray(archive[name]) for name in NPZ_ARRAYS}
    lengths = {len(column) for column in columns.values()}
    if len(lengths) != 1:
        raise SystemExit(f"{path}: the arrays have different lengths {sorted(lengths)}")
    return columns


# --- conversion -------------------------------------------------------------------------------------------


def _previous(values: np.ndarray, first: Any) -> np.ndarray:
    """``values`` shifted one row down, ``first`` in row 0 (the state before the first event)."""
    return np.concatenate((np.asarray([first], dtype=values.dtype), values[:-1]))


def to_hbt_events(columns: dict[str, np.ndarray], feed_latency_ns: int = 0) -> np.ndarray:
    """hftbacktest events (``event_dtype``) for the level-I event table ``columns``.

    Every row yields up to five events, in this order: the trade of an execution, the bid level
    after the row, the old bid level zeroed, the ask level, the old ask zeroed (slots that do not
    apply are dropped). The trade comes before the depth change it caused, as an exchange feed
    sends it: the queue models count the trade against the queue ahead of an order, then only cap
    that queue at the level's new size, so the reverse order would count the execution twice.
    """
    ts = columns["ts"].astype(np.int64)
    n = len(ts)
    kind, side = columns["kind"], columns["side"]
    flags = np.zeros((n, 5), dtype=np.uint64)
    px = np.zeros((n, 5), dtype=np.float64)
    qty = np.zeros((n, 5), dtype=np.float64)
    valid = np.zeros((n, 5), dtype=bool)

    trade = ((kind == EXECUTE) | (kind == HIDDEN)) & (columns["size"] > 0) & (columns["price"] > 0)
    # LOBSTER's side is that of the resting order: executing an ask (-1) is a buyer-initiated trade.
    aggressor = np.where(side == -1, BUY_EVENT, np.where(side == 1, SELL_EVENT, 0)).astype(np.uint64)
    valid[:, 0] = trade
    flags[:, 0] = np.uint64(TRADE_EVENT) | aggressor
    px[:, 0] = columns["price"] / PRICE_SCALE
    qty[:, 0] = columns["size"]

    for slot, book_side, flag in ((1, "bid", BUY_EVENT), (3, "ask", SELL_EVENT)):
        price, size = columns[f"{book_side}_price"], columns[f"{book_side}_size"]
        present = size > 0
        prev_price, prev_size, prev_present = _previous(price, 0), _previous(size, 0), _previous(present, False)
        moved = price != prev_price
        valid[:, slot] = present & (~prev_present | moved | (size != prev_size))
        px[:, slot] = price / PRICE_SCALE
        qty[:, slot] = size
        valid[:, slot + 1] = prev_present & (~present | moved)
        px[:, slot + 1] = prev_price / PRICE_SCALE  # qty stays 0: the old level is gone
        flags[:, slot : slot + 2] = np.uint64(DEPTH_EVENT | flag)

    keep = valid.ravel()
    events = np.zeros(int(keep.sum()), dtype=event_dtype)
    events["ev"] = (flags.ravel() | np.uint64(EXCH_EVENT | LOCAL_EVENT))[keep]
    events["exch_ts"] = np.repeat(ts, 5)[keep]
    events["local_ts"] = events["exch_ts"] + feed_latency_ns
    events["px"] = px.ravel()[keep]
    events["qty"] = qty.ravel()[keep]
    return events


# --- strategies -------------------------------------------------------------------------------------------


def quote_touch(hbt: Any, interval_ns: int, qty: float, max_position: float) -> tuple[int, int]:
    """Keep one bid at the best bid and one ask at the best ask, checked every ``interval_ns``.

    Plain Python on purpose: :data:`quote_touch_njit` is this function compiled, the Python variant
    calls it as it is. Returns (steps, orders submitted); fills and position are read off ``hbt``.
    """
    next_id = 1
    bid_id = 0  # 0: no bid of ours is live or in flight
    ask_id = 0
    steps = 0
    while hbt.elapse(interval_ns) == 0:
        steps += 1
        hbt.clear_inactive_orders(ASSET)  # drops filled, cancelled and expired orders
        depth = hbt.depth(ASSET)
        best_bid = depth.best_bid_tick
        best_ask = depth.best_ask_tick
        if best_bid == INVALID_MIN or best_ask == INVALID_MAX:
            continue  # a side of the book is empty: nothing to quote against
        tick = depth.tick_size
        position = hbt.position(ASSET)
        orders = hbt.orders(ASSET)

        if bid_id != 0 and bid_id in orders:
            order = orders.get(bid_id)
            # A request still in flight is not cancellable: leave it until its response arrives.
            if order.cancellable and (order.price_tick != best_bid or position >= max_position):
                hbt.cancel(ASSET, bid_id, False)
                bid_id = 0
        else:
            bid_id = 0
        if bid_id == 0 and position < max_position:
            hbt.submit_buy_order(ASSET, next_id, best_bid * tick, qty, GTX, LIMIT, False)
            bid_id = next_id
            next_id += 1

        if ask_id != 0 and ask_id in orders:
            order = orders.get(ask_id)
            if order.cancellable and (order.price_tick != best_ask or position <= -max_position):
                hbt.cancel(ASSET, ask_id, False)
                ask_id = 0
        else:
            ask_id = 0
        if ask_id == 0 and position > -max_position:
            hbt.submit_sell_order(ASSET, next_id, best_ask * tick, qty, GTX, LIMIT, False)
            ask_id = next_id
            next_id += 1
    return steps, next_id - 1


def replay_only(hbt: Any, interval_ns: int, qty: float, max_position: float) -> tuple[int, int]:
    """Elapse through the session ``interval_ns`` at a time reading the touch, no orders: the replay's own cost."""
    steps = 0
    spread_sum = 0
    while hbt.elapse(interval_ns) == 0:
        steps += 1
        depth = hbt.depth(ASSET)
        spread_sum += depth.best_ask_tick - depth.best_bid_tick  # read the book as a strategy would
    return steps, 0


quote_touch_njit = njit(quote_touch)
replay_only_njit = njit(replay_only)


# --- timing -----------------------------------------------------------------------------------------------


def build_backtest(events: np.ndarray, settings: argparse.Namespace) -> Any:
    """A fresh HashMap-depth backtester over ``events`` (each run consumes one)."""
    asset = (
        BacktestAsset()
        .data(events)
        .linear_asset(1.0)
        .constant_order_latency(settings.order_latency_ns, settings.order_latency_ns)
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(settings.tick_size)
        .lot_size(settings.lot_size)
    )
    if settings.queue_model == "risk_adverse":
        asset = asset.risk_adverse_queue_model()
    else:
        asset = asset.power_prob_queue_model(3.0)
    return HashMapMarketDepthBacktest([asset])


def run_once(
    strategy: Callable[..., tuple[int, int]], events: np.ndarray, interval_ns: int, settings: argparse.Namespace
) -> dict[str, Any]:
    """One timed run of ``strategy`` on a freshly built backtester: seconds, steps, orders, fills, position."""
    hbt = build_backtest(events, settings)
    gc.collect()
    start, cpu_start = time.perf_counter(), time.process_time()
    steps, orders = strategy(hbt, interval_ns, float(settings.qty), float(settings.max_position))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    result = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "steps": int(steps),
        "orders": int(orders),
        "fills": int(hbt.state_values(ASSET).num_trades),
        "position": float(hbt.position(ASSET)),
    }
    hbt.close()
    return result


def time_variant(
    strategy: Callable[..., tuple[int, int]],
    events: np.ndarray,
    messages: int,
    interval_s: float,
    settings: argparse.Namespace,
) -> dict[str, Any]:
    """Best of ``settings.repeats`` timed runs after an untimed warm-up (numba compiles there)."""
    interval_ns = round(interval_s * NS_PER_S)
    run_once(strategy, events, interval_ns, settings)
    runs = [run_once(strategy, events, interval_ns, settings) for _ in range(settings.repeats)]
    best = min(runs, key=lambda run: run["seconds"])
    return {
        "interval_s": interval_s,
        "messages": messages,
        "seconds": best["seconds"],
        "all_seconds": [run["seconds"] for run in runs],
        # CPU time moves less than wall clock when other processes share the cores.
        "cpu_seconds": min(run["cpu_seconds"] for run in runs),
        "messages_per_s": messages / best["seconds"],
        "steps": best["steps"],
        "steps_per_s": best["steps"] / best["seconds"],
        "orders": best["orders"],
        "fills": best["fills"],
        "position": best["position"],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="MESSAGE.csv[.gz] ORDERBOOK.csv[.gz], or one SESSION.npz")
    parser.add_argument("--date", help="LOBSTER session date YYYY-MM-DD (default: from the file name)")
    parser.add_argument("--intervals", type=float, nargs="+", default=[1.0, 2.0], help="decision intervals, seconds")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant (best is reported)")
    parser.add_argument("--qty", type=int, default=100, help="shares per quote")
    parser.add_argument("--max-position", type=int, default=100, help="no new quote on a side at this position")
    parser.add_argument("--tick-size", type=float, default=0.01)
    parser.add_argument("--lot-size", type=float, default=1.0)
    parser.add_argument("--queue-model", choices=("risk_adverse", "power_prob"), default="risk_adverse")
    parser.add_argument("--order-latency-ns", type=int, default=0, help="entry and response latency of orders")
    parser.add_argument("--feed-latency-ns", type=int, default=0, help="local_ts - exch_ts of every event")
    parser.add_argument("--no-python", action="store_true", help="skip the interpreted variants")
    args = parser.parse_args(argv)
    if len(args.inputs) not in (1, 2) or (len(args.inputs) == 1) != (args.inputs[0].suffix == ".npz"):
        parser.error("give MESSAGE ORDERBOOK (LOBSTER CSVs) or one .npz")
    return args


def main(argv: list[str] | None = None) -> None:
    """Print one JSON object: ``versions``, ``data``, ``settings`` and ``variants``.

    ``variants`` maps a name (``njit_1s``, ``njit_replay_1s``, ``python_1s``, ``python_replay_1s``, ...
    one per driver and interval) to ``driver, interval_s, messages``, ``seconds`` (best wall clock),
    ``all_seconds``, ``cpu_seconds`` (least process time of the runs), ``messages_per_s``, ``steps``,
    ``steps_per_s``, ``orders`` (submitted), ``fills`` (hftbacktest's num_trades) and ``position``.
    """
    args = parse_args(argv)
    start = time.perf_counter()
    if len(args.inputs) == 1:
        columns = read_npz(args.inputs[0])
    else:
        columns = read_lobster(args.inputs[0], args.inputs[1], args.date)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    events = to_hbt_events(columns, args.feed_latency_ns)
    convert_s = time.perf_counter() - start
    messages = len(columns["ts"])
    ts = columns["ts"]

    drivers: list[tuple[str, Callable[..., tuple[int, int]]]] = [
        ("njit", quote_touch_njit),
        ("njit_replay", replay_only_njit),
    ]
    if not args.no_python:
        drivers += [("python", quote_touch), ("python_replay", replay_only)]
    variants = {}
    for interval in args.intervals:
        for name, strategy in drivers:
            label = f"{name}_{interval:g}s"
            variants[label] = {"driver": name, **time_variant(strategy, events, messages, interval, args)}
            if name == "njit":
                v = variants[label]
                print(
                    f"{label}: {v['fills']} fills of {v['orders']} orders, final position {v['position']:g}",
                    file=sys.stderr,
                )

    report = {
        "tool": "hftbacktest",
        "versions": {
            "hftbacktest": hftbacktest.__version__,
            "numpy": np.__version__,
            "numba": numba.__version__,
            "python": platform.python_version(),
        },
        "data": {
            "inputs": [str(path) for path in args.inputs],
            "messages": messages,
            "hbt_events": len(events),
            "session_seconds": float(ts[-1] - ts[0]) / NS_PER_S if messages else 0.0,
            "read_seconds": read_s,
            "convert_seconds": convert_s,
        },
        "settings": {
            "repeats": args.repeats,
            "qty": args.qty,
            "max_position": args.max_position,
            "tick_size": args.tick_size,
            "lot_size": args.lot_size,
            "depth": "HashMapMarketDepthBacktest",
            "exchange": "no_partial_fill_exchange",
            "queue_model": args.queue_model,
            "order_latency_ns": args.order_latency_ns,
            "feed_latency_ns": args.feed_latency_ns,
            "platform": platform.platform(),
        },
        "variants": variants,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
