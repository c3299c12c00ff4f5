"""Hand-made level-I events, a small full-depth (level-III) session generator and an independent
price-time-priority "truth" for one agent order, for the order-book replay and env tests
(imported by the tests as ``tests.envs.orderbook.conftest``).

Prices in the helpers are in cents (``1000`` = $10.00) and become price x 10^4 in the Events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from rltrade.data.ticks.schema import CANCEL, DELETE, EXECUTE, HIDDEN, NO_ID, QUOTE, SUBMIT, Events

DATE = "2012-06-21"
TZ = "America/New_York"
CENT = 100  # price x 10^4 of one cent
EMPTY_BID, EMPTY_ASK = -9_999_999_999, 9_999_999_999


def clock(hhmmss: str, seconds: float = 0.0) -> int:
    """ns UTC of a wall-clock time on :data:`DATE` in New York, plus ``seconds``."""
    return int(pd.Timestamp(f"{DATE} {hhmmss}", tz=TZ).value) + round(seconds * 1e9)


Row = tuple[float, int, int, int, int, int, int, int, int, int]
"""A hand-made event: seconds after the start, kind, order id, size, price, side, ask, ask size, bid, bid size."""


def make_events(
    rows: Sequence[tuple[float, int, int, int, int, int, int, int, int, int]], start: str = "10:00:00"
) -> Events:
    """Events from rows ``(seconds after start, kind, order_id, size, price, side, ask, ask_size, bid, bid_size)``.

    Prices in cents; ``order_id`` -1 for none.
    """
    a = np.array(rows, dtype=np.float64)
    t0 = clock(start)
    cents = np.array([[r[4], r[6], r[8]] for r in rows], dtype=np.int64) * CENT
    return Events(
        symbol="TEST",
        date=DATE,
        ts=t0 + np.round(a[:, 0] * 1e9).astype(np.int64),
        kind=a[:, 1].astype(np.int8),
        order_id=a[:, 2].astype(np.int64),
        size=a[:, 3].astype(np.int64),
        price=cents[:, 0],
        side=a[:, 5].astype(np.int8),
        ask_price=cents[:, 1],
        ask_size=a[:, 7].astype(np.int64),
        bid_price=cents[:, 2],
        bid_size=a[:, 9].astype(np.int64),
        tz=TZ,
    )


def subset(events: Events, keep: np.ndarray) -> Events:
    """The rows of ``events`` where ``keep`` is True."""
    names = ("ts", "kind", "order_id", "size", "price", "side", "ask_price", "ask_size", "bid_price", "bid_size")
    return Events(symbol=events.symbol, date=events.date, tz=events.tz, **{n: getattr(events, n)[keep] for n in names})


# ---------------------------------------------------------------------------------------------------
# a full-depth synthetic session
# ---------------------------------------------------------------------------------------------------


@dataclass
class _Book:
    """A price-time-priority book: side -> price -> FIFO list of [order_id, size]."""

    levels: dict[int, dict[int, list[list[int]]]] = field(default_factory=lambda: {1: {}, -1: {}})
    where: dict[int, tuple[int, int]] = field(default_factory=dict)

    def best(self, side: int) -> int | None:
        prices = self.levels[side]
        if not prices:
            return None
        return max(prices) if side == 1 else min(prices)

    def l1(self) -> tuple[int, int, int, int]:
        bid, ask = self.best(1), self.best(-1)
        bp, bs = (EMPTY_BID, 0) if bid is None else (bid, sum(s for _, s in self.levels[1][bid]))
        ap, as_ = (EMPTY_ASK, 0) if ask is None else (ask, sum(s for _, s in self.levels[-1][ask]))
        return ap, as_, bp, bs

    def add(self, oid: int, side: int, price: int, size: int) -> None:
        self.levels[side].setdefault(price, []).append([oid, size])
        self.where[oid] = (side, price)

    def reduce(self, oid: int, size: int) -> None:
        side, price = self.where[oid]
        queue = self.levels[side][price]
        for entry in queue:
            if entry[0] == oid:
                entry[1] -= size
                if entry[1] <= 0:
                    queue.remove(entry)
                    del self.where[oid]
                break
        if not queue:
            del self.levels[side][price]


def synthetic_session(
    n_events: int, seed: int, start: str = "09:30:00", mean_dt: float = 0.002, tick: int = CENT, mid_cents: int = 1000
) -> Events:
    """A full-depth message stream (every submit, cancel, delete, execution) with its level-I book.

    Events ``mean_dt`` seconds apart on average from ``start``; prices on a one-cent grid around
    ``mid_cents``; market orders sweep the front of the book (several executions at one
    timestamp); a few hidden executions inside the spread.
    """
    rng = np.random.default_rng(seed)
    book = _Book()
    rows: list[tuple[int, ...]] = []
    t = clock(start)
    next_id = 1000
    mid = mid_cents * CENT

    def emit(kind: int, oid: int, size: int, price: int, side: int) -> None:
        rows.append((t, kind, oid, size, price, side, *book.l1()))

    while len(rows) < n_events:
        t += int(rng.exponential(mean_dt * 1e9)) + 1
        bid, ask = book.best(1), book.best(-1)
        u = rng.random()
        if bid is None or ask is None or u < 0.5:
            side = 1 if bid is None else (-1 if ask is None else int(rng.choice((1, -1))))
            ref = book.best(side)
            if ref is None:  # an empty side restarts one tick from the other side (or the mid)
                other = book.best(-side)
                ref = (mid if other is None else other) - side * tick
            k = int(rng.choice((-1, 0, 0, 0, 1, 1, 2, 3, 4)))
            price = ref - side * k * tick
            other = book.best(-side)
            if other is not None and side * (other - price) <= 0:  # never marketable
                price = other - side * tick
            size = int(rng.choice((1, 10, 50, 100, 100, 100, 200, 300)))
            book.add(next_id, side, price, size)
            emit(SUBMIT, next_id, size, price, side)
            next_id += 1
        elif u < 0.85:
            side = int(rng.choice((1, -1)))
            prices = sorted(book.levels[side], reverse=side == 1)[:4]
            price = prices[int(rng.integers(len(prices)))]
            oid, size = book.levels[side][price][int(rng.integers(len(book.levels[side][price])))]
            if size > 1 and rng.random() < 0.3:
                cut = int(rng.integers(1, size))
                book.reduce(oid, cut)
                emit(CANCEL, oid, cut, price, side)
            else:
                book.reduce(oid, size)
                emit(DELETE, oid, size, price, side)
        elif u < 0.97:
            side = int(rng.choice((1, -1)))  # the resting side that is hit
            want = int(rng.integers(1, 300))
            while want > 0 and book.best(side) is not None:
                price = book.best(side)
                oid, size = book.levels[side][price][0]
                take = min(want, size)
                book.reduce(oid, take)
                emit(EXECUTE, oid, take, price, side)
                want -= take
        else:
            side = int(rng.choice((1, -1)))
            price = bid if side == 1 else ask
            if ask - bid > tick and rng.random() < 0.7:
                price = int(rng.integers(bid // tick + 1, ask // tick)) * tick
            emit(HIDDEN, NO_ID, int(rng.integers(1, 50)), price, side)
    a = np.array(rows[:n_events], dtype=np.int64)
    return Events(
        symbol="SYN",
        date=DATE,
        ts=a[:, 0],
        kind=a[:, 1].astype(np.int8),
        order_id=a[:, 2],
        size=a[:, 3],
        price=a[:, 4],
        side=a[:, 5].astype(np.int8),
        ask_price=a[:, 6],
        ask_size=a[:, 7],
        bid_price=a[:, 8],
        bid_size=a[:, 9],
        tz=TZ,
    )


def level1_rows(events: Events) -> np.ndarray:
    """Which rows a LOBSTER level-1 file would hold: events at (or improving) the best price of their side."""
    n = len(events)
    prev_bp = np.concatenate([[EMPTY_BID], events.bid_price[:-1]])
    prev_ap = np.concatenate([[EMPTY_ASK], events.ask_price[:-1]])
    kind, side, price = events.kind, events.side, events.price
    bid_side = (side == 1) & (((kind == SUBMIT) & (price >= prev_bp)) | (price == prev_bp))
    ask_side = (side == -1) & (((kind == SUBMIT) & (price <= prev_ap)) | (price == prev_ap))
    keep: np.ndarray = (kind == HIDDEN) | bid_side | ask_side
    assert keep.shape == (n,)
    return keep


def quotes_only(events: Events) -> Events:
    """The same session as trades-and-quotes data: executions as trades, every other row a QUOTE, no ids."""
    kind = np.where(np.isin(events.kind, (EXECUTE,)), EXECUTE, QUOTE).astype(np.int8)
    keep = events.kind != HIDDEN
    out = subset(events, keep)
    return Events(
        symbol=out.symbol,
        date=out.date,
        tz=out.tz,
        ts=out.ts,
        kind=kind[keep],
        order_id=np.full(len(out), NO_ID, dtype=np.int64),
        size=out.size,
        price=out.price,
        side=out.side,
        ask_price=out.ask_price,
        ask_size=out.ask_size,
        bid_price=out.bid_price,
        bid_size=out.bid_size,
    )


def fifo_truth(events: Events, join_after: int, side: int, price: int, qty: int) -> list[tuple[int, int]]:
    """Fills of one agent order by explicit price-time priority on a FULL-depth stream.

    The agent's order joins the FIFO queue at ``price`` after row ``join_after`` (behind every
    order resting there). Fills: an execution of an order behind the agent at its price (the
    agent went first: all of it), an execution through its price (``min(remaining, size)``), an
    order on the other side arriving at or through its price while nothing rests ahead of the
    agent (``min(remaining, size)``). Returns ``[(row, shares), ...]``.
    """
    book = _Book()
    agent = -12345
    remaining = qty
    fills: list[tuple[int, int]] = []
    for r in range(len(events)):
        kind, oid, size = int(events.kind[r]), int(events.order_id[r]), int(events.size[r])
        p, s = int(events.price[r]), int(events.side[r])
        if r > join_after and remaining > 0:
            queue = book.levels[side].get(price, [])
            ids = [e[0] for e in queue]
            if kind in (EXECUTE, HIDDEN) and side * (price - p) > 0:
                take = min(remaining, size)
                fills.append((r, take))
                remaining -= take
            elif kind == EXECUTE and p == price and s == side and oid in ids and ids.index(oid) > ids.index(agent):
                fills.append((r, remaining))
                remaining = 0
            elif kind == SUBMIT and s == -side and side * (price - p) >= 0 and ids and ids[0] == agent:
                take = min(remaining, size)
                fills.append((r, take))
                remaining -= take
        if kind == SUBMIT:
            book.add(oid, s, p, size)
        elif kind in (CANCEL, DELETE, EXECUTE):
            book.reduce(oid, size)
        if r == join_after:
            book.add(agent, side, price, 1)  # a marker; its size is not part of anyone's queue
    return fills


@pytest.fixture(scope="session")
def session_5k() -> Events:
    """A 5,000-event full-depth synthetic session starting 09:30 New York."""
    return synthetic_session(5000, seed=7)
