"""Level-I replay with an agent's orders: queue position, fills, latency (numba).

The replayed market is the data: **the agent's orders never move it**. Its limit orders rest in
a queue that the recorded events consume, and its fills are inferred from those events; its
market orders take displayed liquidity that stays displayed in the replay. This is honest only
for orders small against the displayed sizes (hftbacktest makes the same assumption).

The agent holds at most one limit order per side (bid, ask) plus in-flight requests. Every row
of :class:`~rltrade.data.ticks.schema.Events` carries the level-I book after its event; the
engine walks the rows in order.

**Requests and latency.** A request (place a limit order, cancel it, send a market order) made
at time ``t`` reaches the book at ``t + latency_ns``: after every event with ``ts <= t +
latency_ns`` and before the next one. Until then the old order is live and can fill. One request
per side can be in flight at a time. A place request for a side replaces that side's order (a
cancel-replace: the new order queues afresh; an order keeps its place only while its price is
unchanged, unlike qtrader, which cancelled and replaced every decision). On arrival a request is
trimmed to the position limit (a pre-trade risk check: with the live orders, no fill can take
``|position|`` beyond it); nothing left, nothing placed.

**Joining a queue.** An order at the displayed best price of its side queues behind the
displayed size there. An order *better* than the displayed best (possible after latency) is alone
at its price: nothing ahead. An order *worse* than the displayed best is invisible at level I:
its queue ahead is unknown until its level becomes the best, and is then set to the whole size
displayed there (conservative: orders that joined after the agent while the level was hidden are
counted ahead).

**Queue models.** Executions at the agent's price consume the queue ahead first, then fill the
agent (partial fills happen). Size decreases that are not executions depend on the model:

- ``"ids"`` (LOBSTER order ids). The agent's reference point is the moment it joined (for an
  order placed behind the best: the moment its level became visible). Orders seen submitted
  before it are ahead, later ones behind. A cancel or delete of an order ahead reduces the queue
  ahead by its size; of an order behind, nothing. An order id never seen submitted (resting
  before the file began, or submitted while its level was below level I) counts as ahead when
  the level has been the displayed best ever since the reference point (the order must then be
  older than the agent); otherwise it is resolved conservatively: its cancel does not advance
  the agent, its execution consumes queue ahead. An execution of an order *behind* the agent at
  its price means the agent was filled first (price-time priority): the agent fills completely.
- ``"risk_averse"``: only executions advance the agent; other size decreases are assumed to come
  from behind (hftbacktest's RiskAverseQueueModel).
- ``"proportional"``: a size decrease ``d`` that is not an execution is split between ahead and
  behind in proportion to their sizes: the queue ahead falls by ``d * ahead / (ahead + behind)``
  (hftbacktest's ProbQueueModel with a linear probability). Executions reported before a size
  change are subtracted from it so they are not counted twice (trades-and-quotes data).

In every model the queue ahead never exceeds the displayed size at the agent's price while that
price is the best (the orders ahead are part of it), and falls to 0 when the displayed best moves
behind the agent's price without a fill (its level is empty but for the agent). A level emptied by
executions does not by itself fill the agent: the aggressor may have taken exactly the level; if
it took more, the rest trades at a price through the agent's, which fills it (below).

**Other fills.** An execution (visible or hidden) at a price *through* the agent's limit (below
its bid, above its ask) fills the agent for ``min(remaining, size)`` at its limit price: that
trade would have met the agent first (qtrader dropped these). An order arriving on the other
side at or through the agent's price when nothing is ahead of it (a SUBMIT, or a QUOTE whose
displayed size at such a price grows) fills the agent for ``min(remaining, that size)``, also at
its limit price (conservative: no price improvement). Hidden executions *at* the agent's price
do not advance it: hidden orders are not part of the displayed queue, and whether the displayed
queue traded first is not observable at level I.

**Market orders** fill at the touch at arrival, at most the displayed size there (an
immediate-or-cancel order: at level I the depth behind the touch is unknown, so the rest is
dropped rather than priced by a guess; an empty side fills nothing). :func:`flatten` is the
exception: it closes the whole position at the touch (the end of an episode must be flat).

**Fees**: ``fee_per_share`` on every filled share, ``fee_per_order`` once per order that fills at
least once (dollars).

Fill reasons: :data:`FILL_QUEUE` (the queue ahead was consumed), :data:`FILL_PRIORITY` (an order
behind the agent executed), :data:`FILL_THROUGH` (a trade through the price), :data:`FILL_CROSS`
(the other side reached the price), :data:`FILL_MARKET`, :data:`FILL_FLATTEN`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from rltrade.data.ticks.schema import (
    CANCEL,
    DELETE,
    EXECUTE,
    HIDDEN,
    NO_ID,
    PRICE_SCALE,
    QUOTE,
    SUBMIT,
    Events,
)
from rltrade.envs.timing import EnvConfigError
from rltrade.errors import DataValidationError, RLTradeError
from rltrade.features.orderbook import OwnOrders

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

# --- the packed event matrix: one int64 row per event --------------------------------------------
C_TS, C_KIND, C_OID, C_SIZE, C_PRICE, C_SIDE, C_AP, C_AS, C_BP, C_BS = range(10)
N_EVENT_COLS = 10

# --- queue models -----------------------------------------------------------------------------------
MODEL_IDS, MODEL_RISK_AVERSE, MODEL_PROPORTIONAL = 0, 1, 2
QUEUE_MODELS: dict[str, int] = {"ids": MODEL_IDS, "risk_averse": MODEL_RISK_AVERSE, "proportional": MODEL_PROPORTIONAL}

# --- fill reasons -----------------------------------------------------------------------------------
FILL_QUEUE, FILL_PRIORITY, FILL_THROUGH, FILL_CROSS, FILL_MARKET, FILL_FLATTEN = 1, 2, 3, 4, 5, 6
FILL_REASONS: dict[int, str] = {
    FILL_QUEUE: "queue",
    FILL_PRIORITY: "priority",
    FILL_THROUGH: "through",
    FILL_CROSS: "cross",
    FILL_MARKET: "market",
    FILL_FLATTEN: "flatten",
}

# --- the fill log: int64 rows (fees in a float64 column beside it) -----------------------------------
L_TS, L_SIDE, L_PRICE, L_SIZE, L_REASON, L_ORDER, L_EVENT = range(7)
N_FILL_COLS = 7
FILL_ROOM = 8  # more than one event or one batch of due requests can write (2 per side, 1 market)

# --- integer state ----------------------------------------------------------------------------------
S_CURSOR = 0  # next event to process
S_POS = 1  # position (shares)
S_CASH = 2  # cash, price x 10^4 x shares (exact)
S_NFILL = 3  # rows written to the fill log
S_SEQ = 4  # agent orders sent so far (each order's number)
S_MKT_QTY = 5  # in-flight market order, signed shares (0: none)
S_MKT_TS = 6  # its arrival time
S_NEXT_DUE = 7  # earliest arrival of an in-flight request
S_MODEL = 8
S_LATENCY = 9
S_LIMIT = 10  # position limit (shares)
S_RECORD = 11  # 1: write the own-order log
S_TICK = 12
# one block per side (0 bid, 1 ask) at O_BASE + O_STRIDE * side
O_BASE, O_STRIDE = 16, 16
O_PRICE = 0
O_REM = 1  # remaining shares
O_STATUS = 2  # ST_NONE, ST_UNSEEN (queue ahead unknown), ST_SEEN
O_REF = 3  # event index: orders seen submitted at or after it are behind the agent
O_CONT = 4  # 1 while the level has been the displayed best ever since O_REF
O_SEQ = 5  # the order's number
O_FILLED = 6  # 1 once the order has filled (fee_per_order charged)
R_KIND = 7  # in-flight request: REQ_NONE, REQ_CANCEL, REQ_PLACE
R_TS = 8
R_PRICE = 9
R_QTY = 10
SI_LEN = 64  # slots 48.. are free for an env built on the engine

ST_NONE, ST_UNSEEN, ST_SEEN = 0, 1, 2
REQ_NONE, REQ_CANCEL, REQ_PLACE = 0, 1, 2

# --- float state ------------------------------------------------------------------------------------
F_AHEAD = 0  # + side: shares ahead of the agent's order
F_CUMTRADE = 2  # + side: executions at the order's price not yet matched by a size change
F_FEES = 4  # fees paid so far (dollars)
F_FEE_SHARE = 5
F_FEE_ORDER = 6
SF_LEN = 16  # slots 8.. are free for an env

NO_LIMIT = 1 << 62
NEVER = np.iinfo(np.int64).max


def pack_events(events: Events) -> tuple[IntArray, IntArray]:
    """The event matrix (n, :data:`N_EVENT_COLS`) and, per dense order id, its SUBMIT row (-1: none).

    Order ids are renumbered 0..U-1 (column ``C_OID``; -1 for rows without one: hidden
    executions, halts, quotes). Raises :class:`DataValidationError` on unsorted times or
    columns of different lengths.
    """
    n = len(events)
    columns = ("ts", "kind", "order_id", "size", "price", "side", "ask_price", "ask_size", "bid_price", "bid_size")
    for name in columns:
        if np.asarray(getattr(events, name)).shape != (n,):
            raise DataValidationError(f"events {events.symbol} {events.date}: column {name!r} is not of length {n}")
    ts = np.asarray(events.ts, dtype=np.int64)
    if n > 1 and bool(np.any(ts[1:] < ts[:-1])):
        at = int(np.flatnonzero(ts[1:] < ts[:-1])[0]) + 1
        raise DataValidationError(f"events {events.symbol} {events.date}: ts goes back in time at row {at}")
    kind = np.asarray(events.kind, dtype=np.int64)
    raw_id = np.asarray(events.order_id, dtype=np.int64)
    has_id = (raw_id != NO_ID) & np.isin(kind, (SUBMIT, CANCEL, DELETE, EXECUTE))
    dense = np.full(n, -1, dtype=np.int64)
    first_submit = np.zeros(0, dtype=np.int64)
    if bool(has_id.any()):
        unique, inverse = np.unique(raw_id[has_id], return_inverse=True)
        dense[has_id] = inverse
        first_submit = np.full(unique.shape[0], -1, dtype=np.int64)
        rows = np.flatnonzero(has_id & (kind == SUBMIT))
        # rows are in time order, so reversed assignment leaves each id's first SUBMIT row
        first_submit[dense[rows[::-1]]] = rows[::-1]
    ev = np.empty((n, N_EVENT_COLS), dtype=np.int64)
    ev[:, C_TS] = ts
    ev[:, C_KIND] = kind
    ev[:, C_OID] = dense
    ev[:, C_SIZE] = events.size
    ev[:, C_PRICE] = events.price
    ev[:, C_SIDE] = events.side
    ev[:, C_AP] = events.ask_price
    ev[:, C_AS] = events.ask_size
    ev[:, C_BP] = events.bid_price
    ev[:, C_BS] = events.bid_size
    return ev, first_submit


def has_order_ids(events: Events) -> bool:
    """True when some submission, cancel, delete or execution carries an order id."""
    kind = np.asarray(events.kind)
    return bool(np.any((np.asarray(events.order_id) != NO_ID) & np.isin(kind, (SUBMIT, CANCEL, DELETE, EXECUTE))))


def resolve_queue_model(queue_model: str | None, events: Events) -> int:
    """The model's code; None: ``"ids"`` when the events carry order ids, else ``"risk_averse"``."""
    with_ids = has_order_ids(events)
    if queue_model is None:
        return MODEL_IDS if with_ids else MODEL_RISK_AVERSE
    if queue_model not in QUEUE_MODELS:
        raise EnvConfigError(f"unknown queue_model {queue_model!r}; use one of {', '.join(QUEUE_MODELS)}")
    if queue_model == "ids" and not with_ids:
        raise EnvConfigError(
            f"queue_model 'ids' needs order ids; events {events.symbol} {events.date} carry none "
            "(use 'risk_averse' or 'proportional')"
        )
    return QUEUE_MODELS[queue_model]


def new_state(
    queue_model: int, latency_ns: int, position_limit: int | None, tick: int, fee_per_share: float, fee_per_order: float
) -> tuple[IntArray, FloatArray]:
    """Fresh integer and float state of the engine (no orders, flat, nothing processed)."""
    si = np.zeros(SI_LEN, dtype=np.int64)
    sf = np.zeros(SF_LEN, dtype=np.float64)
    si[S_NEXT_DUE] = NEVER
    si[S_MODEL] = queue_model
    si[S_LATENCY] = latency_ns
    si[S_LIMIT] = NO_LIMIT if position_limit is None else position_limit
    si[S_TICK] = tick
    sf[F_FEE_SHARE] = fee_per_share
    sf[F_FEE_ORDER] = fee_per_order
    return si, sf


# ================================================================================================
# numba kernels
# ================================================================================================


@njit(cache=True)
def _side_base(s: int) -> int:
    return O_BASE + O_STRIDE * s


@njit(cache=True)
def _write_fill(
    si: IntArray,
    sf: FloatArray,
    fills: IntArray,
    fees: FloatArray,
    sign: int,
    qty: int,
    price: int,
    ts: int,
    reason: int,
    seq: int,
    evi: int,
    first: bool,
) -> None:
    """Book a fill of ``qty`` shares (``sign`` +1 buy, -1 sell) and log it with its fee."""
    fee = qty * sf[F_FEE_SHARE] + (sf[F_FEE_ORDER] if first else 0.0)
    si[S_POS] += sign * qty
    si[S_CASH] -= sign * qty * price
    sf[F_FEES] += fee
    k = si[S_NFILL]
    fills[k, L_TS] = ts
    fills[k, L_SIDE] = sign
    fills[k, L_PRICE] = price
    fills[k, L_SIZE] = qty
    fills[k, L_REASON] = reason
    fills[k, L_ORDER] = seq
    fills[k, L_EVENT] = evi
    fees[k] = fee
    si[S_NFILL] = k + 1


@njit(cache=True)
def _fill_order(
    si: IntArray, sf: FloatArray, fills: IntArray, fees: FloatArray, s: int, qty: int, ts: int, reason: int, evi: int
) -> None:
    """Fill ``qty`` shares of side ``s``'s limit order at its price; remove it when done."""
    b = _side_base(s)
    qty = min(qty, si[b + O_REM])
    if qty <= 0:
        return
    _write_fill(
        si, sf, fills, fees, 1 - 2 * s, qty, si[b + O_PRICE], ts, reason, si[b + O_SEQ], evi, si[b + O_FILLED] == 0
    )
    si[b + O_FILLED] = 1
    si[b + O_REM] -= qty
    if si[b + O_REM] == 0:
        si[b + O_STATUS] = ST_NONE


@njit(cache=True)
def _consume(
    si: IntArray, sf: FloatArray, fills: IntArray, fees: FloatArray, s: int, qty: int, ts: int, evi: int
) -> None:
    """An execution of ``qty`` shares at the order's price: the queue ahead first, then the agent."""
    ahead = sf[F_AHEAD + s]
    if qty <= ahead:
        sf[F_AHEAD + s] = ahead - qty
    else:
        sf[F_AHEAD + s] = 0.0
        _fill_order(si, sf, fills, fees, s, int(np.floor(qty - ahead)), ts, FILL_QUEUE, evi)


@njit(cache=True)
def _submitted(first_sub: IntArray, oid: int, i: int) -> int:
    """Row of order ``oid``'s SUBMIT if it came before event ``i`` (else -1: unknown so far)."""
    if oid < 0:
        return -1
    row = first_sub[oid]
    return row if row < i else -1


@njit(cache=True)
def _is_ahead(first_sub: IntArray, oid: int, i: int, ref: int, cont: int) -> bool:
    """Is the order ``oid`` of event ``i`` ahead of the agent? (the ``ids`` model of the module doc)."""
    submitted = _submitted(first_sub, oid, i)
    if submitted >= 0:
        return submitted < ref
    return cont == 1


@njit(cache=True)
def _cross_qty(ev: IntArray, i: int, s: int, p: int) -> int:
    """Shares newly offered on the other side at or through price ``p`` by event ``i``."""
    kind = ev[i, C_KIND]
    if s == 0:  # agent bids p: sellers at <= p
        if kind == SUBMIT:
            if ev[i, C_SIDE] == -1 and ev[i, C_PRICE] <= p:
                return ev[i, C_SIZE]
            return 0
        if kind == QUOTE and ev[i, C_AS] > 0 and ev[i, C_AP] <= p:
            if i > 0 and ev[i - 1, C_AP] == ev[i, C_AP]:
                return max(0, ev[i, C_AS] - ev[i - 1, C_AS])
            return ev[i, C_AS]
        return 0
    if kind == SUBMIT:
        if ev[i, C_SIDE] == 1 and ev[i, C_PRICE] >= p:
            return ev[i, C_SIZE]
        return 0
    if kind == QUOTE and ev[i, C_BS] > 0 and ev[i, C_BP] >= p:
        if i > 0 and ev[i - 1, C_BP] == ev[i, C_BP]:
            return max(0, ev[i, C_BS] - ev[i - 1, C_BS])
        return ev[i, C_BS]
    return 0


@njit(cache=True)
def _update_order(
    ev: IntArray, i: int, first_sub: IntArray, si: IntArray, sf: FloatArray, fills: IntArray, fees: FloatArray, s: int
) -> None:
    """Apply event ``i`` to side ``s``'s live order: fills, queue ahead, visibility."""
    b = _side_base(s)
    sgn = 1 - 2 * s  # +1 bid, -1 ask
    p = si[b + O_PRICE]
    kind = ev[i, C_KIND]
    evp = ev[i, C_PRICE]
    evs = ev[i, C_SIZE]
    ts = ev[i, C_TS]
    model = si[S_MODEL]
    status = si[b + O_STATUS]

    # 1. the event itself
    if kind in (EXECUTE, HIDDEN):
        if sgn * (p - evp) > 0:  # traded through the agent's price
            _fill_order(si, sf, fills, fees, s, evs, ts, FILL_THROUGH, i)
        elif kind == EXECUTE and evp == p and status == ST_SEEN and (ev[i, C_SIDE] == sgn or ev[i, C_SIDE] == 0):
            if model == MODEL_IDS and _submitted(first_sub, ev[i, C_OID], i) >= si[b + O_REF]:
                sf[F_AHEAD + s] = 0.0  # an order behind the agent traded: the agent went first
                _fill_order(si, sf, fills, fees, s, si[b + O_REM], ts, FILL_PRIORITY, i)
            else:
                _consume(si, sf, fills, fees, s, evs, ts, i)
            sf[F_CUMTRADE + s] += evs
    elif (
        kind in (CANCEL, DELETE)
        and model == MODEL_IDS
        and status == ST_SEEN
        and evp == p
        and ev[i, C_SIDE] == sgn
        and _is_ahead(first_sub, ev[i, C_OID], i, si[b + O_REF], si[b + O_CONT])
    ):
        sf[F_AHEAD + s] = max(0.0, sf[F_AHEAD + s] - evs)
    if si[b + O_STATUS] == ST_NONE:
        return

    # 2. the displayed book after the event
    if s == 0:
        touch, size = ev[i, C_BP], ev[i, C_BS]
    else:
        touch, size = ev[i, C_AP], ev[i, C_AS]
    if size <= 0:  # an empty side: nothing displayed anywhere, the agent's level included
        touch = p - sgn
    if touch == p:
        if status == ST_UNSEEN:  # the level just became visible: everything shown is ahead
            si[b + O_STATUS] = ST_SEEN
            si[b + O_REF] = i + 1
            si[b + O_CONT] = 1
            sf[F_AHEAD + s] = size
            sf[F_CUMTRADE + s] = 0.0
        else:
            if model != MODEL_IDS and i > 0:
                before = ev[i - 1, C_BP] if s == 0 else ev[i - 1, C_AP]
                before_size = ev[i - 1, C_BS] if s == 0 else ev[i - 1, C_AS]
                if before == p:
                    if size != before_size:  # trades not yet shown stay pending until the size moves
                        change = before_size - size - sf[F_CUMTRADE + s]
                        sf[F_CUMTRADE + s] = 0.0
                        if change > 0 and model == MODEL_PROPORTIONAL:
                            front = sf[F_AHEAD + s]
                            back = max(0.0, before_size - front)
                            if front + back > 0:
                                sf[F_AHEAD + s] = max(0.0, front - change * front / (front + back))
                else:
                    sf[F_CUMTRADE + s] = 0.0
            if sf[F_AHEAD + s] > size:
                sf[F_AHEAD + s] = size
    elif sgn * (touch - p) > 0:  # a better price is displayed: the agent's level is hidden
        si[b + O_CONT] = 0
        sf[F_CUMTRADE + s] = 0.0
    else:  # the displayed best is behind the agent: its level holds only the agent
        if status == ST_UNSEEN:
            si[b + O_REF] = i + 1
        si[b + O_STATUS] = ST_SEEN
        si[b + O_CONT] = 1
        sf[F_AHEAD + s] = 0.0
        sf[F_CUMTRADE + s] = 0.0

    # 3. the other side reached the agent's price
    if si[b + O_STATUS] == ST_SEEN and sf[F_AHEAD + s] == 0.0:
        crossing = _cross_qty(ev, i, s, p)
        if crossing > 0:
            _fill_order(si, sf, fills, fees, s, crossing, ts, FILL_CROSS, i)


@njit(cache=True)
def _join(ev: IntArray, si: IntArray, sf: FloatArray, fills: IntArray, fees: FloatArray, s: int, ts: int) -> None:
    """Side ``s``'s new order reaches the book at ``ts`` (after event ``cursor - 1``)."""
    b = _side_base(s)
    sgn = 1 - 2 * s
    p = si[b + O_PRICE]
    i = si[S_CURSOR] - 1
    sf[F_CUMTRADE + s] = 0.0
    if i < 0:  # no book yet: the queue is unknown until the level shows
        si[b + O_STATUS] = ST_UNSEEN
        si[b + O_CONT] = 0
        sf[F_AHEAD + s] = -1.0
        return
    if s == 0:
        touch, size, opp, opp_size = ev[i, C_BP], ev[i, C_BS], ev[i, C_AP], ev[i, C_AS]
    else:
        touch, size, opp, opp_size = ev[i, C_AP], ev[i, C_AS], ev[i, C_BP], ev[i, C_BS]
    si[b + O_REF] = i + 1
    if size > 0 and touch == p:
        si[b + O_STATUS] = ST_SEEN
        si[b + O_CONT] = 1
        sf[F_AHEAD + s] = size
    elif size > 0 and sgn * (touch - p) > 0:
        si[b + O_STATUS] = ST_UNSEEN
        si[b + O_CONT] = 0
        sf[F_AHEAD + s] = -1.0
    else:  # better than everything displayed: alone at its price
        si[b + O_STATUS] = ST_SEEN
        si[b + O_CONT] = 1
        sf[F_AHEAD + s] = 0.0
        if opp_size > 0 and sgn * (p - opp) >= 0:  # marketable on arrival: fills at its limit
            _fill_order(si, sf, fills, fees, s, opp_size, ts, FILL_CROSS, i)


@njit(cache=True)
def _room(si: IntArray, sign: int) -> int:
    """Shares that may still be bought (sign +1) or sold (-1) within the position limit."""
    return si[S_LIMIT] - sign * si[S_POS]


@njit(cache=True)
def _apply_due(ev: IntArray, si: IntArray, sf: FloatArray, fills: IntArray, fees: FloatArray, until: int) -> None:
    """Apply the in-flight requests arriving at or before ``until``: limit requests, then market."""
    if si[S_NEXT_DUE] > until:
        return
    next_due = NEVER
    for s in range(2):
        b = _side_base(s)
        kind = si[b + R_KIND]
        if kind == REQ_NONE:
            continue
        at = si[b + R_TS]
        if at > until:
            next_due = min(next_due, at)
            continue
        si[b + R_KIND] = REQ_NONE
        si[b + O_STATUS] = ST_NONE
        si[b + O_REM] = 0
        if kind == REQ_PLACE:
            qty = min(si[b + R_QTY], _room(si, 1 - 2 * s))
            if qty > 0:
                si[S_SEQ] += 1
                si[b + O_SEQ] = si[S_SEQ]
                si[b + O_PRICE] = si[b + R_PRICE]
                si[b + O_REM] = qty
                si[b + O_FILLED] = 0
                _join(ev, si, sf, fills, fees, s, at)
    qty = si[S_MKT_QTY]
    if qty != 0:
        at = si[S_MKT_TS]
        if at > until:
            next_due = min(next_due, at)
        else:
            si[S_MKT_QTY] = 0
            sign = 1 if qty > 0 else -1
            same_side = _side_base(0 if sign > 0 else 1)
            resting = si[same_side + O_REM] if si[same_side + O_STATUS] != ST_NONE else 0
            want = min(abs(qty), _room(si, sign) - resting)
            i = si[S_CURSOR] - 1
            if want > 0 and i >= 0:
                price = ev[i, C_AP] if sign > 0 else ev[i, C_BP]
                shown = ev[i, C_AS] if sign > 0 else ev[i, C_BS]
                take = min(want, shown)
                if take > 0:
                    si[S_SEQ] += 1
                    _write_fill(si, sf, fills, fees, sign, take, price, at, FILL_MARKET, si[S_SEQ], i, True)
    si[S_NEXT_DUE] = next_due


@njit(cache=True)
def _record_own(si: IntArray, own: IntArray, i: int) -> None:
    for s in range(2):
        b = _side_base(s)
        live = si[b + O_STATUS] != ST_NONE
        own[i, 2 * s] = si[b + O_PRICE] if live else 0
        own[i, 2 * s + 1] = si[b + O_REM] if live else 0


@njit(cache=True)
def advance(
    ev: IntArray,
    first_sub: IntArray,
    si: IntArray,
    sf: FloatArray,
    fills: IntArray,
    fees: FloatArray,
    own: IntArray,
    to_ts: int,
) -> int:
    """Process the events with ``ts <= to_ts`` and the requests due by then.

    Returns 0, or -1 when the fill log has fewer than :data:`FILL_ROOM` free rows (the state is
    consistent: grow the log and call again).
    """
    n = ev.shape[0]
    cap = fills.shape[0]
    i = si[S_CURSOR]
    while i < n and ev[i, C_TS] <= to_ts:
        if cap - si[S_NFILL] < FILL_ROOM:
            return -1
        ts = ev[i, C_TS]
        if si[S_NEXT_DUE] < ts:
            _apply_due(ev, si, sf, fills, fees, ts - 1)
            if cap - si[S_NFILL] < FILL_ROOM:
                return -1
        if si[O_BASE + O_STATUS] != ST_NONE:
            _update_order(ev, i, first_sub, si, sf, fills, fees, 0)
        if si[O_BASE + O_STRIDE + O_STATUS] != ST_NONE:
            _update_order(ev, i, first_sub, si, sf, fills, fees, 1)
        i += 1
        si[S_CURSOR] = i
        if si[S_RECORD] == 1:
            _record_own(si, own, i - 1)
    if cap - si[S_NFILL] < FILL_ROOM:
        return -1
    _apply_due(ev, si, sf, fills, fees, to_ts)
    return 0


@njit(cache=True)
def request_place(si: IntArray, s: int, price: int, qty: int, now: int) -> None:
    """Place (or replace) side ``s``'s limit order at ``price``; it arrives at ``now + latency``."""
    b = _side_base(s)
    si[b + R_KIND] = REQ_PLACE
    si[b + R_TS] = now + si[S_LATENCY]
    si[b + R_PRICE] = price
    si[b + R_QTY] = qty
    si[S_NEXT_DUE] = min(si[S_NEXT_DUE], now + si[S_LATENCY])


@njit(cache=True)
def request_cancel(si: IntArray, s: int, now: int) -> None:
    """Cancel side ``s``'s limit order; effective at ``now + latency``."""
    b = _side_base(s)
    si[b + R_KIND] = REQ_CANCEL
    si[b + R_TS] = now + si[S_LATENCY]
    si[S_NEXT_DUE] = min(si[S_NEXT_DUE], now + si[S_LATENCY])


@njit(cache=True)
def request_market(si: IntArray, qty: int, now: int) -> None:
    """Send a market order for ``qty`` shares (signed: + buy, - sell); it arrives at ``now + latency``."""
    si[S_MKT_QTY] = qty
    si[S_MKT_TS] = now + si[S_LATENCY]
    si[S_NEXT_DUE] = min(si[S_NEXT_DUE], now + si[S_LATENCY])


@njit(cache=True)
def flatten(
    ev: IntArray, si: IntArray, sf: FloatArray, fills: IntArray, fees: FloatArray, ts: int, fallback: int
) -> None:
    """Withdraw every order and request, then close the whole position at the touch at ``ts``.

    The touch is the last processed event's; ``fallback`` prices the trade when that side is
    empty. Needs one free row in the fill log.
    """
    for s in range(2):
        b = _side_base(s)
        si[b + O_STATUS] = ST_NONE
        si[b + O_REM] = 0
        si[b + R_KIND] = REQ_NONE
    si[S_MKT_QTY] = 0
    si[S_NEXT_DUE] = NEVER
    pos = si[S_POS]
    if pos == 0:
        return
    sign = -1 if pos > 0 else 1
    i = si[S_CURSOR] - 1
    price = fallback
    if i >= 0:
        if sign > 0 and ev[i, C_AS] > 0:
            price = ev[i, C_AP]
        elif sign < 0 and ev[i, C_BS] > 0:
            price = ev[i, C_BP]
    si[S_SEQ] += 1
    _write_fill(si, sf, fills, fees, sign, abs(pos), price, ts, FILL_FLATTEN, si[S_SEQ], max(i, 0), True)


@njit(cache=True)
def _quote_loop(
    ev: IntArray,
    first_sub: IntArray,
    si: IntArray,
    sf: FloatArray,
    fills: IntArray,
    fees: FloatArray,
    own: IntArray,
    start: int,
    end: int,
    interval: int,
    ticks_away: int,
    size: int,
) -> int:
    """Quote both sides every ``interval`` from ``start`` to ``end``; returns the decisions made.

    Stops early (returning -(decisions + 1)) when the fill log needs to grow.
    """
    t = start
    k = 0
    tick = si[S_TICK]
    while t <= end:
        if advance(ev, first_sub, si, sf, fills, fees, own, t) < 0:
            return -(k + 1)
        i = si[S_CURSOR] - 1
        if i >= 0:
            for s in range(2):
                b = _side_base(s)
                sign = 1 - 2 * s
                shown = ev[i, C_BS] if s == 0 else ev[i, C_AS]
                price = ev[i, C_BP] - ticks_away * tick if s == 0 else ev[i, C_AP] + ticks_away * tick
                want = shown > 0 and si[S_LIMIT] - sign * si[S_POS] >= size
                live = si[b + O_STATUS] != ST_NONE
                if want:
                    if not (live and si[b + O_PRICE] == price):
                        request_place(si, s, price, size, t)
                elif live:
                    request_cancel(si, s, t)
        k += 1
        t = start + k * interval
    return k


# ================================================================================================
# the Python API
# ================================================================================================

FILL_DTYPE = np.dtype(
    [
        ("ts", "i8"),
        ("side", "i1"),
        ("price", "i8"),
        ("size", "i8"),
        ("reason", "i1"),
        ("order", "i8"),
        ("event", "i8"),
        ("fee", "f8"),
    ]
)
"""One agent fill: time (ns UTC), side (+1 buy, -1 sell), price x 10^4, shares, reason
(:data:`FILL_REASONS`), the agent order's number, the event that caused it, fee (dollars)."""


class ReplayError(RLTradeError, RuntimeError):
    """A request the replay cannot take (e.g. a second one in flight on the same side)."""


def fills_table(fills: IntArray, fees: FloatArray, start: int, stop: int) -> NDArray[Any]:
    """Rows ``start:stop`` of a fill log as a structured array of :data:`FILL_DTYPE`."""
    out = np.empty(stop - start, dtype=FILL_DTYPE)
    rows = fills[start:stop]
    for name, column in (
        ("ts", L_TS),
        ("side", L_SIDE),
        ("price", L_PRICE),
        ("size", L_SIZE),
        ("reason", L_REASON),
        ("order", L_ORDER),
        ("event", L_EVENT),
    ):
        out[name] = rows[:, column]
    out["fee"] = fees[start:stop]
    return out


class FillLog:
    """A growable fill log (int64 rows and a float64 fee column) shared with the kernels."""

    def __init__(self, capacity: int = 4096) -> None:
        self.rows = np.zeros((max(capacity, 2 * FILL_ROOM), N_FILL_COLS), dtype=np.int64)
        self.fees = np.zeros(self.rows.shape[0], dtype=np.float64)

    def grow(self, used: int, need: int = 0) -> None:
        """Make room for at least ``need`` (and :data:`FILL_ROOM`) more rows after ``used``."""
        capacity = self.rows.shape[0]
        target = max(2 * capacity, used + need + FILL_ROOM)
        rows = np.zeros((target, N_FILL_COLS), dtype=np.int64)
        fees = np.zeros(target, dtype=np.float64)
        rows[:used] = self.rows[:used]
        fees[:used] = self.fees[:used]
        self.rows, self.fees = rows, fees


class Replay:
    """Replay one session's level-I events with an agent's orders in them (see the module doc).

    Parameters
    ----------
    events:
        The session (:class:`~rltrade.data.ticks.schema.Events`).
    queue_model:
        ``"ids"``, ``"risk_averse"`` or ``"proportional"``; None: ``"ids"`` when the events carry
        order ids, else ``"risk_averse"``.
    latency_ns:
        Delay before a request reaches the book (nanoseconds).
    position_limit:
        Largest ``|position|`` (shares) fills may reach; None: no limit.
    tick:
        Tick size, price x 10^4 (default 100: one cent).
    fee_per_share, fee_per_order:
        Fees in dollars (per filled share; once per order that fills).
    record_own:
        Keep the agent's resting orders after every event (:meth:`own_orders`).

    Examples
    --------
    >>> replay = Replay(events)                           # doctest: +SKIP
    >>> replay.advance(t0)                                # the book at t0
    >>> replay.place(+1, replay.book()["bid_price"], 100)  # join the best bid
    >>> fills = replay.advance(t0 + 2_000_000_000)        # structured array of FILL_DTYPE
    """

    def __init__(
        self,
        events: Events,
        *,
        queue_model: str | None = None,
        latency_ns: int = 0,
        position_limit: int | None = None,
        tick: int = 100,
        fee_per_share: float = 0.0,
        fee_per_order: float = 0.0,
        record_own: bool = False,
    ) -> None:
        if int(latency_ns) < 0:
            raise EnvConfigError(f"latency_ns must be >= 0, got {latency_ns}")
        if position_limit is not None and int(position_limit) < 0:
            raise EnvConfigError(f"position_limit must be >= 0, got {position_limit}")
        if int(tick) <= 0:
            raise EnvConfigError(f"tick must be > 0, got {tick}")
        if fee_per_share < 0 or fee_per_order < 0:
            raise EnvConfigError(f"fees must be >= 0, got {fee_per_share} per share and {fee_per_order} per order")
        self.events = events
        self.model = resolve_queue_model(queue_model, events)
        self._ev, self._first_sub = pack_events(events)
        self._params = (
            self.model,
            int(latency_ns),
            None if position_limit is None else int(position_limit),
            int(tick),
            float(fee_per_share),
            float(fee_per_order),
        )
        self._record = bool(record_own)
        self.reset()

    def reset(self) -> None:
        """Back to the start: no orders, flat, no event processed."""
        self._si, self._sf = new_state(*self._params)
        self._si[S_RECORD] = 1 if self._record else 0
        self._log = FillLog()
        self._own = np.zeros((len(self.events) if self._record else 0, 4), dtype=np.int64)
        self.now: int = int(self._ev[0, C_TS]) - 1 if len(self.events) else 0
        """Time of the last :meth:`advance` (ns UTC); requests are sent at this time."""

    # --- time ---------------------------------------------------------------------------------
    def advance(self, to_ts: int) -> NDArray[Any]:
        """Process the events with ``ts <= to_ts`` (and the requests due by then); the new fills."""
        to_ts = int(to_ts)
        if to_ts < self.now:
            raise ReplayError(f"advance: {to_ts} is before the replay's time {self.now}")
        start = int(self._si[S_NFILL])
        while (
            advance(self._ev, self._first_sub, self._si, self._sf, self._log.rows, self._log.fees, self._own, to_ts) < 0
        ):
            self._log.grow(int(self._si[S_NFILL]))
        self.now = to_ts
        return fills_table(self._log.rows, self._log.fees, start, int(self._si[S_NFILL]))

    # --- requests ------------------------------------------------------------------------------
    def _side(self, side: int) -> int:
        if side not in (1, -1):
            raise ReplayError(f"side must be +1 (bid) or -1 (ask), got {side}")
        s = 0 if side == 1 else 1
        if self._si[O_BASE + O_STRIDE * s + R_KIND] != REQ_NONE:
            raise ReplayError(f"a request for the {'bid' if s == 0 else 'ask'} is still in flight; advance first")
        return s

    def place(self, side: int, price: int, size: int) -> bool:
        """Rest a limit order (+1 bid, -1 ask) of ``size`` shares at ``price`` (x 10^4).

        An order already resting at that price is kept (its place and remaining size) and False
        is returned; otherwise the side's order is replaced and True is returned.
        """
        s = self._side(side)
        if int(size) <= 0:
            raise ReplayError(f"place: size must be > 0, got {size}")
        b = O_BASE + O_STRIDE * s
        if self._si[b + O_STATUS] != ST_NONE and self._si[b + O_PRICE] == int(price):
            return False
        request_place(self._si, s, int(price), int(size), self.now)
        return True

    def cancel(self, side: int) -> None:
        """Cancel the side's limit order (effective after the latency)."""
        request_cancel(self._si, self._side(side), self.now)

    def market(self, size: int) -> None:
        """Send a market order: ``size`` > 0 buys, < 0 sells (fills on arrival, at most the displayed size)."""
        if int(size) == 0:
            raise ReplayError("market: size must not be 0")
        if self._si[S_MKT_QTY] != 0:
            raise ReplayError("a market order is still in flight; advance first")
        request_market(self._si, int(size), self.now)

    def flatten(self) -> NDArray[Any]:
        """Withdraw all orders and close the position at the touch now; the fill (if any)."""
        start = int(self._si[S_NFILL])
        if self._log.rows.shape[0] - start < FILL_ROOM:
            self._log.grow(start)
        i = int(self._si[S_CURSOR]) - 1
        fallback = int((self._ev[i, C_AP] + self._ev[i, C_BP]) // 2) if i >= 0 else 0
        flatten(self._ev, self._si, self._sf, self._log.rows, self._log.fees, self.now, fallback)
        return fills_table(self._log.rows, self._log.fees, start, int(self._si[S_NFILL]))

    # --- state ---------------------------------------------------------------------------------
    @property
    def position(self) -> int:
        """Shares held (negative: short)."""
        return int(self._si[S_POS])

    @property
    def cash(self) -> float:
        """Cash from fills, dollars (fees excluded)."""
        return float(self._si[S_CASH]) / PRICE_SCALE

    @property
    def fees(self) -> float:
        """Fees paid so far, dollars."""
        return float(self._sf[F_FEES])

    @property
    def cursor(self) -> int:
        """Number of events processed."""
        return int(self._si[S_CURSOR])

    def book(self) -> dict[str, int]:
        """The displayed level-I book after the last processed event."""
        i = int(self._si[S_CURSOR]) - 1
        if i < 0:
            raise ReplayError("no event processed yet: no book")
        row = self._ev[i]
        return {
            "bid_price": int(row[C_BP]),
            "bid_size": int(row[C_BS]),
            "ask_price": int(row[C_AP]),
            "ask_size": int(row[C_AS]),
        }

    def mark(self) -> float:
        """Mark-to-mid P&L net of fees, dollars."""
        book = self.book()
        mid = (book["bid_price"] + book["ask_price"]) / 2.0
        return (float(self._si[S_CASH]) + self.position * mid) / PRICE_SCALE - self.fees

    def order(self, side: int) -> dict[str, Any] | None:
        """The side's live limit order: price, remaining shares, queue ahead (None: unknown yet)."""
        s = 0 if side == 1 else 1
        b = O_BASE + O_STRIDE * s
        if self._si[b + O_STATUS] == ST_NONE:
            return None
        seen = self._si[b + O_STATUS] == ST_SEEN
        return {
            "price": int(self._si[b + O_PRICE]),
            "remaining": int(self._si[b + O_REM]),
            "queue_ahead": float(self._sf[F_AHEAD + s]) if seen else None,
            "number": int(self._si[b + O_SEQ]),
        }

    def fills(self) -> NDArray[Any]:
        """Every fill so far (structured array of :data:`FILL_DTYPE`)."""
        return fills_table(self._log.rows, self._log.fees, 0, int(self._si[S_NFILL]))

    def own_orders(self) -> OwnOrders:
        """The agent's resting orders after each event processed so far (needs ``record_own=True``)."""
        if not self._record:
            raise ReplayError("own_orders needs Replay(..., record_own=True)")
        n = int(self._si[S_CURSOR])
        own = np.zeros((len(self.events), 4), dtype=np.int64)
        own[:n] = self._own[:n]
        return OwnOrders(bid_price=own[:, 0], bid_size=own[:, 1], ask_price=own[:, 2], ask_size=own[:, 3])


@dataclass(frozen=True)
class LoopResult:
    """What :func:`quote_at_touch_loop` did: decisions, events, fills and the final account."""

    n_decisions: int
    n_events: int
    fills: NDArray[Any]
    position: int
    cash: float
    fees: float
    mark: float
    """Mark-to-mid P&L net of fees at the end, dollars."""


def quote_at_touch_loop(
    events: Events,
    interval_ns: int,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    ticks_away: int = 0,
    size: int = 100,
    position_limit: int = 100,
    queue_model: str | None = None,
    latency_ns: int = 0,
    tick: int = 100,
    fee_per_share: float = 0.0,
    fee_per_order: float = 0.0,
    packed: tuple[IntArray, IntArray] | None = None,
) -> LoopResult:
    """Run "quote both sides at the touch every ``interval_ns``" entirely in numba.

    ``packed`` is :func:`pack_events` of ``events`` done beforehand (the env packs once in its
    constructor; a benchmark excludes it as it excludes other engines' data conversion).

    At each decision time (``start_ns``, ``start_ns + interval_ns``, ... up to ``end_ns``;
    defaults: the first and last event) the policy wants a bid ``ticks_away`` ticks below the
    best bid and an ask as far above the best ask, each of ``size`` shares and only while it
    cannot take ``|position|`` past ``position_limit``; an order already at the wanted price
    keeps its place, otherwise it is replaced. Nothing is flattened at the end. This is the
    replay's benchmark loop (queue tracking included; the features are numpy, outside it).
    """
    if int(interval_ns) <= 0:
        raise EnvConfigError(f"interval_ns must be > 0, got {interval_ns}")
    if int(size) <= 0 or int(position_limit) < int(size):
        raise EnvConfigError(f"need 0 < size <= position_limit, got size {size}, position_limit {position_limit}")
    if int(ticks_away) < 0:
        raise EnvConfigError(f"ticks_away must be >= 0, got {ticks_away}")
    model = resolve_queue_model(queue_model, events)
    ev, first_sub = packed if packed is not None else pack_events(events)
    if ev.shape[0] == 0:
        raise DataValidationError(f"events {events.symbol} {events.date}: no events to replay")
    start = int(ev[0, C_TS]) if start_ns is None else int(start_ns)
    end = int(ev[-1, C_TS]) if end_ns is None else int(end_ns)
    si, sf = new_state(
        model, int(latency_ns), int(position_limit), int(tick), float(fee_per_share), float(fee_per_order)
    )
    log = FillLog(max(4096, ev.shape[0] // 8))
    own = np.zeros((0, 4), dtype=np.int64)
    done = 0
    while True:
        resume = start + done * int(interval_ns)
        k = _quote_loop(
            ev, first_sub, si, sf, log.rows, log.fees, own, resume, end, int(interval_ns), int(ticks_away), int(size)
        )
        if k >= 0:
            done += k
            break
        done += -k - 1
        log.grow(int(si[S_NFILL]))
    i = int(si[S_CURSOR]) - 1
    mid = (ev[i, C_AP] + ev[i, C_BP]) / 2.0 if i >= 0 else 0.0
    pos = int(si[S_POS])
    mark = (float(si[S_CASH]) + pos * mid) / PRICE_SCALE - float(sf[F_FEES])
    return LoopResult(
        n_decisions=done,
        n_events=int(si[S_CURSOR]),
        fills=fills_table(log.rows, log.fees, 0, int(si[S_NFILL])),
        position=pos,
        cash=float(si[S_CASH]) / PRICE_SCALE,
        fees=float(sf[F_FEES]),
        mark=mark,
    )
