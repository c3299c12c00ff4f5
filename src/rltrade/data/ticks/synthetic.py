"""A seeded synthetic level-I event stream with order ids, LOBSTER-like, for tests and benchmarks.

The model (a zero-intelligence order flow steered by a latent fair price):

- A latent fair price ``f`` (in ticks) follows a Brownian motion with ``daily_move`` dollars of
  standard deviation over a 6.5-hour session; the book follows it because new orders are
  placed around it.
- Events arrive as competing Poisson processes (simulated exactly: exponential waits at the
  total rate, each event drawn in proportion to its rate):

  * limit orders (``submit_rate``), buy or sell (the side with fewer resting orders is the more
    likely: liquidity refills where it was taken), at ``floor(f) - d`` (buy) or
    ``floor(f) + 1 + d`` (sell), ``d`` geometric with mean ``depth`` - 1 ticks: at the touch, behind
    it, or inside the spread when the spread is wide. One that reaches the other side is
    marketable: it executes against the resting orders up to its limit price (one
    :data:`EXECUTE` per resting order touched, best price first, oldest order first) and its
    remainder rests as a :data:`SUBMIT`;
  * market orders (``market_rate``) executing against the touch only (oldest orders first);
  * cancellations: each resting order leaves at rate ``1 / order_life``, by a partial
    :data:`CANCEL` (share ``partial_share``) or a full :data:`DELETE`;
  * hidden executions (``hidden_rate``): :data:`HIDDEN` events inside the spread (or at the
    touch) that leave the visible book as it is; their order id is -1.

- The book is a real book: every price level holds a FIFO queue of orders, so each event names
  an order id that was submitted earlier in the stream (the book opens empty and is filled by a
  burst of ``initial_orders`` submissions per side at the open), and the level-I columns are the
  best prices and the summed sizes of their queues after each event. An empty side carries
  LOBSTER's dummy price (:data:`~rltrade.data.ticks.validate.EMPTY_ASK_PRICE`), which at the
  default rates happens in the first event and seldom after it.

Sizes are round lots (100 x geometric) or, with probability ``odd_lot_share``, odd lots 1-99.
Events start at 09:30 exchange time on ``date``; a session longer than 6.5 hours (a benchmark)
simply runs on past the close. The simulation is a numba kernel: a 6.5-hour session (about 70k
events at the defaults) takes a few milliseconds once compiled.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pandas as pd

from rltrade.data.ticks.schema import CANCEL, DELETE, EVENT_DTYPES, EXECUTE, HIDDEN, NO_ID, SUBMIT, Events
from rltrade.data.ticks.validate import EMPTY_ASK_PRICE, EMPTY_BID_PRICE, validate_events

SESSION_SECONDS = 23_400.0  # 09:30 to 16:00
MAX_DEPTH = 40  # ticks between the fair price and the farthest new order
POOL = 1 << 16  # resting orders the kernel can hold at once (about 100 rest at the defaults)
_EDGE = MAX_DEPTH + 8  # the fair price stays this many ticks inside the price grid

# orders[...] rows and state[...] entries of the kernel
_ID, _SIDE, _PX, _SIZE, _NEXT, _PREV, _POS = range(7)
_NLIVE, _NFREE, _NBID, _NASK, _BESTBID, _BESTASK, _NEXTID = range(7)
# book[...] planes: summed size, first and last order of each (side, price) queue
_LVL, _HEAD, _TAIL = range(3)
# out[...] rows
_COLUMNS = ("ts", "kind", "order_id", "size", "price", "side", "ask_price", "ask_size", "bid_price", "bid_size")


def synthetic_events(
    *,
    seconds: float = SESSION_SECONDS,
    seed: int = 0,
    symbol: str = "SYN",
    date: str = "2024-01-02",
    tick: int = 100,
    price: float = 100.0,
    tz: str = "America/New_York",
    submit_rate: float = 1.5,
    market_rate: float = 0.2,
    hidden_rate: float = 0.1,
    order_life: float = 60.0,
    partial_share: float = 0.05,
    depth: float = 6.0,
    daily_move: float = 2.0,
    odd_lot_share: float = 0.15,
    initial_orders: int = 10,
) -> Events:
    """A seeded synthetic session of level-I events with coherent order ids (see the module docstring).

    Parameters
    ----------
    seconds:
        Length of the session in seconds (23400 = 6.5 hours).
    seed:
        The same seed gives the same events.
    symbol, date, tz:
        The session's name and exchange time zone; events start at 09:30 local time.
    tick:
        Tick size in price units (x 10^4 dollars): 100 is one cent.
    price:
        Fair price at the open, in dollars.
    submit_rate, market_rate, hidden_rate:
        Arrivals per second of limit orders, market orders and hidden executions.
    order_life:
        Mean time (seconds) a resting order waits before it is cancelled.
    partial_share:
        Share of cancellations that are partial (the rest delete the order).
    depth:
        Mean distance + 1 (ticks) of a new limit order from the fair price.
    daily_move:
        Standard deviation (dollars) of the fair price's move over 6.5 hours.
    odd_lot_share:
        Share of order sizes that are odd lots (1-99 shares).
    initial_orders:
        Limit orders per side submitted at the open.
    """
    if seconds <= 0 or tick <= 0 or price * 1e4 / tick < 4 * _EDGE:
        raise ValueError(f"seconds ({seconds}) and tick ({tick}) must be positive, price ({price}) many ticks")
    if min(submit_rate, market_rate, hidden_rate) < 0 or order_life <= 0 or depth < 1:
        raise ValueError("rates must be non-negative, order_life positive and depth at least 1")
    mid = price * 1e4 / tick
    sigma = daily_move * 1e4 / tick / math.sqrt(SESSION_SECONDS)
    width = int(mid + 8 * sigma * math.sqrt(seconds)) + 2 * _EDGE + 64
    lo, hi = float(_EDGE), float(width - _EDGE)
    open_ns = pd.Timestamp(f"{date} 09:30", tz=tz).value
    rate = submit_rate + market_rate + hidden_rate + (submit_rate + initial_orders) * 2
    capacity = int(rate * seconds * 1.5) + 4 * initial_orders + 1024
    while True:
        out = np.zeros((len(_COLUMNS), capacity), dtype=np.int64)
        n = _simulate(
            out, np.random.default_rng(seed), float(seconds), mid, lo, hi, sigma, width, tick, open_ns,
            submit_rate, market_rate, hidden_rate, 1.0 / order_life, partial_share, 1.0 / depth,
            odd_lot_share, initial_orders,
        )  # fmt: skip
        if n >= 0:
            break
        capacity *= 2  # rare: more events than foreseen; the same seed replays the same stream
    columns = {name: out[i, :n].astype(EVENT_DTYPES[name]) for i, name in enumerate(_COLUMNS)}
    events = Events(symbol=symbol, date=date, tz=tz, **columns)
    validate_events(events)
    return events


@numba.njit(cache=True, nogil=True)
def _size(rng: np.random.Generator, odd_share: float) -> int:  # pragma: no cover - compiled
    if rng.random() < odd_share:
        return int(rng.integers(1, 100))
    return 100 * int(rng.geometric(0.45))


@numba.njit(cache=True, nogil=True)
def _add(
    book: np.ndarray, orders: np.ndarray, st: np.ndarray, live: np.ndarray, free: np.ndarray, s: int, px: int, size: int
) -> int:  # pragma: no cover - compiled
    """Queue a new order of side ``s`` (0 bid, 1 ask) at tick ``px`` behind that level's orders; its slot."""
    st[_NFREE] -= 1
    slot = free[st[_NFREE]]
    orders[_ID, slot] = st[_NEXTID]
    st[_NEXTID] += 1
    orders[_SIDE, slot] = s
    orders[_PX, slot] = px
    orders[_SIZE, slot] = size
    last = book[_TAIL, s, px]
    orders[_PREV, slot] = last
    orders[_NEXT, slot] = -1
    if last >= 0:
        orders[_NEXT, last] = slot
    else:
        book[_HEAD, s, px] = slot
    book[_TAIL, s, px] = slot
    book[_LVL, s, px] += size
    live[st[_NLIVE]] = slot
    orders[_POS, slot] = st[_NLIVE]
    st[_NLIVE] += 1
    if s == 0:
        if st[_NBID] == 0 or px > st[_BESTBID]:
            st[_BESTBID] = px
        st[_NBID] += 1
    else:
        if st[_NASK] == 0 or px < st[_BESTASK]:
            st[_BESTASK] = px
        st[_NASK] += 1
    return slot


@numba.njit(cache=True, nogil=True)
def _remove(
    book: np.ndarray, orders: np.ndarray, st: np.ndarray, live: np.ndarray, free: np.ndarray, slot: int
) -> None:  # pragma: no cover - compiled
    """Take an order out of its queue (with what is left of its size) and out of the live list."""
    s = orders[_SIDE, slot]
    px = orders[_PX, slot]
    book[_LVL, s, px] -= orders[_SIZE, slot]
    prev, nxt = orders[_PREV, slot], orders[_NEXT, slot]
    if prev >= 0:
        orders[_NEXT, prev] = nxt
    else:
        book[_HEAD, s, px] = nxt
    if nxt >= 0:
        orders[_PREV, nxt] = prev
    else:
        book[_TAIL, s, px] = prev
    pos = orders[_POS, slot]
    last = live[st[_NLIVE] - 1]
    live[pos] = last
    orders[_POS, last] = pos
    st[_NLIVE] -= 1
    free[st[_NFREE]] = slot
    st[_NFREE] += 1
    if s == 0:
        st[_NBID] -= 1
        if px == st[_BESTBID] and book[_LVL, 0, px] == 0 and st[_NBID] > 0:
            p = px - 1
            while book[_LVL, 0, p] == 0:  # a bid rests below: the scan stops
                p -= 1
            st[_BESTBID] = p
    else:
        st[_NASK] -= 1
        if px == st[_BESTASK] and book[_LVL, 1, px] == 0 and st[_NASK] > 0:
            p = px + 1
            while book[_LVL, 1, p] == 0:
                p += 1
            st[_BESTASK] = p


@numba.njit(cache=True, nogil=True)
def _emit(
    out: np.ndarray, k: int, st: np.ndarray, book: np.ndarray, tick: int, ts: int,
    kind: int, oid: int, size: int, px: int, side: int,
) -> int:  # fmt: skip  # pragma: no cover - compiled
    """Write event ``k`` with the level-I book as it is now; return ``k + 1``."""
    out[0, k] = ts
    out[1, k] = kind
    out[2, k] = oid
    out[3, k] = size
    out[4, k] = px * tick
    out[5, k] = side
    if st[_NASK] > 0:
        out[6, k] = st[_BESTASK] * tick
        out[7, k] = book[_LVL, 1, st[_BESTASK]]
    else:
        out[6, k] = EMPTY_ASK_PRICE
        out[7, k] = 0
    if st[_NBID] > 0:
        out[8, k] = st[_BESTBID] * tick
        out[9, k] = book[_LVL, 0, st[_BESTBID]]
    else:
        out[8, k] = EMPTY_BID_PRICE
        out[9, k] = 0
    return k + 1


@numba.njit(cache=True, nogil=True)
def _execute(
    out: np.ndarray, k: int, st: np.ndarray, book: np.ndarray, orders: np.ndarray, live: np.ndarray,
    free: np.ndarray, tick: int, ts: int, s: int, qty: int, limit: int,
) -> tuple[int, int]:  # fmt: skip  # pragma: no cover - compiled
    """Execute ``qty`` against side ``s`` at prices up to ``limit``, oldest order first; (k, qty left)."""
    sign = 1 if s == 0 else -1
    while qty > 0:
        if s == 0:
            if st[_NBID] == 0 or st[_BESTBID] < limit:
                break
            px = st[_BESTBID]
        else:
            if st[_NASK] == 0 or st[_BESTASK] > limit:
                break
            px = st[_BESTASK]
        slot = book[_HEAD, s, px]
        take = min(qty, orders[_SIZE, slot])
        oid = orders[_ID, slot]
        orders[_SIZE, slot] -= take
        book[_LVL, s, px] -= take
        qty -= take
        if orders[_SIZE, slot] == 0:
            _remove(book, orders, st, live, free, slot)
        k = _emit(out, k, st, book, tick, ts, EXECUTE, oid, take, px, sign)
    return k, qty


@numba.njit(cache=True, nogil=True)
def _submit(
    out: np.ndarray, k: int, st: np.ndarray, book: np.ndarray, orders: np.ndarray, live: np.ndarray,
    free: np.ndarray, tick: int, ts: int, s: int, px: int, qty: int,
) -> int:  # fmt: skip  # pragma: no cover - compiled
    """A limit order of side ``s`` at ``px``: its marketable part executes, the rest rests."""
    other = 1 - s
    if (s == 0 and st[_NASK] > 0 and px >= st[_BESTASK]) or (s == 1 and st[_NBID] > 0 and px <= st[_BESTBID]):
        k, qty = _execute(out, k, st, book, orders, live, free, tick, ts, other, qty, px)
    if qty > 0 and st[_NFREE] > 0:  # a full pool (never at sane rates) drops the remainder
        slot = _add(book, orders, st, live, free, s, px, qty)
        k = _emit(out, k, st, book, tick, ts, SUBMIT, orders[_ID, slot], qty, px, 1 if s == 0 else -1)
    return k


@numba.njit(cache=True, nogil=True)
def _simulate(
    out: np.ndarray, rng: np.random.Generator, seconds: float, mid: float, lo: float, hi: float, sigma: float,
    width: int, tick: int, open_ns: int, submit_rate: float, market_rate: float, hidden_rate: float, cancel_rate: float,
    partial_share: float, depth_p: float, odd_share: float, initial: int,
) -> int:  # fmt: skip  # pragma: no cover - compiled
    """Fill ``out`` (one row per column of the schema) and return the number of events, or -1 if it is too small."""
    book = np.zeros((3, 2, width), dtype=np.int64)
    book[_HEAD] = -1
    book[_TAIL] = -1
    orders = np.zeros((7, POOL), dtype=np.int64)
    live = np.zeros(POOL, dtype=np.int64)
    free = np.arange(POOL - 1, -1, -1).astype(np.int64)
    st = np.zeros(7, dtype=np.int64)
    st[_NFREE] = POOL
    st[_NEXTID] = 1
    cap = out.shape[1]
    f = mid
    k = 0
    for _ in range(initial):  # the opening burst, alternating sides so both appear at once
        for s in range(2):
            d = min(rng.geometric(depth_p) - 1, MAX_DEPTH)
            px = math.floor(f) - d if s == 0 else math.floor(f) + 1 + d
            if k + st[_NLIVE] + 2 > cap:
                return -1
            k = _submit(out, k, st, book, orders, live, free, tick, open_ns, s, px, _size(rng, odd_share))
    t = 0.0
    while True:
        total = submit_rate + market_rate + hidden_rate + cancel_rate * st[_NLIVE]
        dt = rng.exponential(1.0 / total)
        t += dt
        if t >= seconds:
            return k
        f += sigma * math.sqrt(dt) * rng.standard_normal()
        if f < lo:
            f = 2 * lo - f
        elif f > hi:
            f = 2 * hi - f
        if k + st[_NLIVE] + 2 > cap:
            return -1
        ts = open_ns + round(t * 1e9)
        u = rng.random() * total
        s = int(rng.integers(0, 2))
        if u < submit_rate:
            # the thinner side gets more of the new orders: liquidity refills where it was taken
            s = 0 if rng.random() * (st[_NBID] + st[_NASK] + 2) < st[_NASK] + 1 else 1
            d = min(rng.geometric(depth_p) - 1, MAX_DEPTH)
            px = math.floor(f) - d if s == 0 else math.floor(f) + 1 + d
            k = _submit(out, k, st, book, orders, live, free, tick, ts, s, px, _size(rng, odd_share))
        elif u < submit_rate + market_rate:
            # a market order of the other side hits the touch of side s (only that level)
            if (s == 0 and st[_NBID] > 0) or (s == 1 and st[_NASK] > 0):
                touch = st[_BESTBID] if s == 0 else st[_BESTASK]
                k, _ = _execute(out, k, st, book, orders, live, free, tick, ts, s, _size(rng, odd_share), touch)
        elif u < submit_rate + market_rate + hidden_rate:
            if st[_NBID] > 0 and st[_NASK] > 0:
                bid, ask = st[_BESTBID], st[_BESTASK]
                px = rng.integers(bid + 1, ask) if ask - bid >= 2 else (bid if s == 0 else ask)
                k = _emit(out, k, st, book, tick, ts, HIDDEN, NO_ID, _size(rng, odd_share), px, 1 if s == 0 else -1)
        elif st[_NLIVE] > 0:
            slot = live[rng.integers(0, st[_NLIVE])]
            oid, size, px = orders[_ID, slot], orders[_SIZE, slot], orders[_PX, slot]
            side = 1 if orders[_SIDE, slot] == 0 else -1
            if size >= 2 and rng.random() < partial_share:
                cut = rng.integers(1, size)
                orders[_SIZE, slot] -= cut
                book[_LVL, orders[_SIDE, slot], px] -= cut
                k = _emit(out, k, st, book, tick, ts, CANCEL, oid, cut, px, side)
            else:
                _remove(book, orders, st, live, free, slot)
                k = _emit(out, k, st, book, tick, ts, DELETE, oid, size, px, side)
