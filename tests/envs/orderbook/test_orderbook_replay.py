"""The level-I replay engine: hand-worked queue positions, fills, latency and queue models, and
its fills against an explicit price-time-priority simulation of synthetic full-depth sessions."""

from __future__ import annotations

import numpy as np
import pytest
from tests.envs.orderbook.conftest import (
    CENT,
    clock,
    fifo_truth,
    level1_rows,
    make_events,
    quotes_only,
    subset,
)

import rltrade.envs.orderbook.replay as replay_module
from rltrade.data.ticks.schema import CANCEL, DELETE, EXECUTE, HIDDEN, QUOTE, SUBMIT, Events
from rltrade.envs.orderbook.replay import (
    FILL_CROSS,
    FILL_MARKET,
    FILL_PRIORITY,
    FILL_QUEUE,
    FILL_THROUGH,
    Replay,
    ReplayError,
    quote_at_touch_loop,
)
from rltrade.envs.timing import EnvConfigError
from rltrade.errors import DataValidationError

S = 1_000_000_000
BID, ASK = 1, -1


def at(seconds: float) -> int:
    """ns of ``seconds`` after the hand-made sessions' start (10:00)."""
    return clock("10:00:00", seconds)


def walk(replay: Replay, times: list[float], side: int = BID) -> list[float | None]:
    """Queue ahead of the side's order after advancing to each time (None: no order / unknown)."""
    out: list[float | None] = []
    for t in times:
        replay.advance(at(t))
        order = replay.order(side)
        out.append(None if order is None else order["queue_ahead"])
    return out


# --- queue position with order ids ------------------------------------------------------------------


def test_queue_walk_with_ids_through_submits_cancels_deletes_and_executions() -> None:
    # bid 10.00 shows 400 at the first row: 300 of it rests from before the file (ids unknown)
    events = make_events(
        [
            (0.0, SUBMIT, 1, 100, 1000, 1, 1002, 500, 1000, 400),  # A
            (0.1, SUBMIT, 2, 200, 1000, 1, 1002, 500, 1000, 600),  # B
            # the agent joins at 0.5: 600 ahead
            (1.0, SUBMIT, 3, 50, 1000, 1, 1002, 500, 1000, 650),  # C, behind the agent
            (1.1, CANCEL, 2, 50, 1000, 1, 1002, 500, 1000, 600),  # part of B, ahead: -50
            (1.2, DELETE, 3, 50, 1000, 1, 1002, 500, 1000, 550),  # C, behind: no change
            (1.3, DELETE, 9, 100, 1000, 1, 1002, 500, 1000, 450),  # unknown id, level shown all along: ahead
            (1.4, EXECUTE, 1, 100, 1000, 1, 1002, 500, 1000, 350),  # A traded: -100
            (1.5, SUBMIT, 4, 100, 1000, 1, 1002, 500, 1000, 450),  # D, behind
            (1.6, EXECUTE, 2, 150, 1000, 1, 1002, 500, 1000, 300),  # the rest of B: -150
            (1.7, EXECUTE, 8, 200, 1000, 1, 1002, 500, 1000, 100),  # the last unknown shares ahead
            (1.8, EXECUTE, 4, 30, 1000, 1, 1002, 500, 1000, 70),  # D (behind) traded: the agent went first
        ]
    )
    replay = Replay(events, queue_model="ids")
    replay.advance(at(0.5))
    assert replay.place(BID, 1000 * CENT, 100)
    ahead = walk(replay, [0.6, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7])
    assert ahead == [600, 600, 550, 550, 450, 350, 350, 200, 0]
    fills = replay.advance(at(1.8))
    assert fills.tolist() == [(at(1.8), 1, 1000 * CENT, 100, FILL_PRIORITY, 1, 10, 0.0)]
    assert replay.order(BID) is None and replay.position == 100
    assert replay.cash == pytest.approx(-1000.0)


def test_unknown_ids_resolved_conservatively_once_the_level_was_hidden() -> None:
    events = make_events(
        [
            (0.0, SUBMIT, 1, 100, 1000, 1, 1002, 500, 1000, 300),  # 200 unknown + A
            # agent joins at 0.5: 300 ahead
            (1.0, SUBMIT, 2, 100, 1001, 1, 1002, 500, 1001, 100),  # a better bid hides 10.00
            (1.5, DELETE, 9, 100, 1000, 1, 1002, 500, 1001, 100),  # unknown id at 10.00 while hidden
            (2.0, DELETE, 2, 100, 1001, 1, 1002, 500, 1000, 200),  # 10.00 shows again with 200
            (2.5, DELETE, 8, 50, 1000, 1, 1002, 500, 1000, 150),  # unknown id: not known to be ahead
            (3.0, DELETE, 1, 100, 1000, 1, 1002, 500, 1000, 50),  # A, known ahead: -100
        ]
    )
    replay = Replay(events, queue_model="ids")
    replay.advance(at(0.5))
    replay.place(BID, 1000 * CENT, 100)
    # hidden: no change; shown again: at most the 200 displayed; the unknown delete does not
    # advance the agent but the displayed size caps the queue ahead; A's delete does
    assert walk(replay, [1.0, 1.5, 2.0, 2.5, 3.0]) == [300, 300, 200, 150, 50]


def test_trade_through_the_level_fills_the_agent() -> None:
    events = make_events(
        [
            (0.0, SUBMIT, 1, 300, 1000, 1, 1002, 100, 1000, 300),
            # agent joins at 0.5 behind 300
            (1.0, EXECUTE, 1, 300, 1000, 1, 1002, 100, 999, 200),  # the level is swept ...
            (1.0, EXECUTE, 7, 150, 999, 1, 1002, 100, 999, 50),  # ... and the sweep goes through 10.00
        ]
    )
    replay = Replay(events, queue_model="ids")
    replay.advance(at(0.5))
    replay.place(BID, 1000 * CENT, 100)
    fills = replay.advance(at(2.0))
    assert [(f["event"], f["size"], f["price"], f["reason"]) for f in fills] == [(2, 100, 1000 * CENT, FILL_THROUGH)]


def test_trade_larger_than_the_displayed_queue_without_ids() -> None:
    # trades-and-quotes: a 400-share print at 10.00 when 300 are shown ahead of the agent
    events = make_events(
        [
            (0.0, QUOTE, -1, 300, 1000, 1, 1002, 100, 1000, 300),
            (1.0, EXECUTE, -1, 400, 1000, 1, 1002, 100, 1000, 300),
            (1.1, QUOTE, -1, 200, 999, 1, 1002, 100, 999, 200),
        ]
    )
    for model in ("risk_averse", "proportional"):
        replay = Replay(events, queue_model=model)
        replay.advance(at(0.5))
        replay.place(BID, 1000 * CENT, 150)
        fills = replay.advance(at(2.0))
        assert [(f["event"], f["size"], f["reason"]) for f in fills] == [(1, 100, FILL_QUEUE)], model
        assert replay.order(BID) == {"price": 1000 * CENT, "remaining": 50, "queue_ahead": 0.0, "number": 1}


def test_a_price_change_loses_the_queue_place_and_the_same_price_keeps_it() -> None:
    events = make_events(
        [
            (0.0, SUBMIT, 1, 200, 1000, 1, 1002, 100, 1000, 200),
            (1.0, SUBMIT, 2, 100, 1000, 1, 1002, 100, 1000, 300),  # behind the agent
            (2.0, SUBMIT, 3, 100, 1001, 1, 1002, 100, 1001, 100),  # a better bid
            (3.0, DELETE, 3, 100, 1001, 1, 1002, 100, 1000, 300),
        ]
    )
    replay = Replay(events, queue_model="ids")
    replay.advance(at(0.5))
    assert replay.place(BID, 1000 * CENT, 100)
    replay.advance(at(1.5))
    assert not replay.place(BID, 1000 * CENT, 100)  # same price: kept
    replay.advance(at(1.6))
    assert replay.order(BID) == {"price": 1000 * CENT, "remaining": 100, "queue_ahead": 200.0, "number": 1}
    replay.advance(at(2.5))
    assert replay.place(BID, 1001 * CENT, 100)  # follows the best bid: a new order at the back
    replay.advance(at(2.6))
    assert replay.order(BID) == {"price": 1001 * CENT, "remaining": 100, "queue_ahead": 100.0, "number": 2}
    replay.advance(at(3.5))  # 10.01 emptied: the agent is alone there
    assert replay.order(BID)["queue_ahead"] == 0.0  # type: ignore[index]
    replay.place(BID, 1000 * CENT, 100)  # back to 10.00: behind all 300 now, not its old 200
    replay.advance(at(3.6))
    assert replay.order(BID) == {"price": 1000 * CENT, "remaining": 100, "queue_ahead": 300.0, "number": 3}


def test_an_order_away_from_the_touch_is_unknown_until_its_level_shows() -> None:
    events = make_events(
        [
            (0.0, SUBMIT, 1, 100, 1000, 1, 1002, 100, 1000, 100),
            # agent bids 9.99 at 0.5, one tick behind: level I shows nothing there
            (1.0, DELETE, 1, 100, 1000, 1, 1002, 100, 999, 250),  # 9.99 becomes the best: 250 shown
            (2.0, SUBMIT, 2, 50, 999, 1, 1002, 100, 999, 300),  # behind the agent
            (3.0, EXECUTE, 5, 250, 999, 1, 1002, 100, 999, 50),  # the 250 ahead trade
            (4.0, EXECUTE, 2, 10, 999, 1, 1002, 100, 999, 40),  # then an order behind: the agent went first
        ]
    )
    replay = Replay(events, queue_model="ids")
    replay.advance(at(0.5))
    replay.place(BID, 999 * CENT, 100)
    assert walk(replay, [0.6, 1.0, 2.0, 3.0]) == [None, 250, 250, 0]
    fills = replay.advance(at(4.0))
    assert [(f["event"], f["size"], f["price"], f["reason"]) for f in fills] == [(4, 100, 999 * CENT, FILL_PRIORITY)]


def test_other_side_reaching_the_price_and_hidden_executions() -> None:
    events = make_events(
        [
            (0.0, SUBMIT, 1, 100, 1000, 1, 1003, 100, 1000, 100),
            # agent bids 10.01, better than the displayed 10.00: nothing ahead
            (1.0, HIDDEN, -1, 20, 1001, 1, 1003, 100, 1000, 100),  # hidden at its price: nothing
            (2.0, SUBMIT, 2, 30, 1001, -1, 1001, 30, 1000, 100),  # a seller at 10.01 meets the agent
            (3.0, SUBMIT, 3, 100, 1000, 1, 1001, 30, 1000, 200),  # unrelated: no second fill
            (4.0, HIDDEN, -1, 25, 1000, 1, 1001, 30, 1000, 200),  # hidden trade below 10.01: through
        ]
    )
    replay = Replay(events, queue_model="ids")
    replay.advance(at(0.5))
    replay.place(BID, 1001 * CENT, 100)
    fills = replay.advance(at(5.0))
    assert [(f["event"], f["size"], f["reason"]) for f in fills] == [(2, 30, FILL_CROSS), (4, 25, FILL_THROUGH)]
    assert replay.order(BID)["remaining"] == 45  # type: ignore[index]
    # one fee per order (once), one per share
    replay = Replay(events, queue_model="ids", fee_per_share=0.01, fee_per_order=1.0)
    replay.advance(at(0.5))
    replay.place(BID, 1001 * CENT, 100)
    fills = replay.advance(at(5.0))
    assert fills["fee"].tolist() == pytest.approx([1.3, 0.25])
    assert replay.fees == pytest.approx(1.55)


# --- latency ------------------------------------------------------------------------------------------

LATENCY_EVENTS = [
    (0.0, SUBMIT, 1, 100, 1000, 1, 1002, 100, 1000, 100),
    # the agent decides at 1.0 to join 10.00
    (1.2, SUBMIT, 2, 100, 1000, 1, 1002, 100, 1000, 200),
    (1.4, EXECUTE, 1, 100, 1000, 1, 1002, 100, 1000, 100),
    (1.6, EXECUTE, 2, 40, 1000, 1, 1002, 100, 1000, 60),
    (2.0, EXECUTE, 2, 60, 1000, 1, 1002, 100, 999, 80),
    (2.2, SUBMIT, 3, 100, 1000, 1, 1002, 100, 1000, 100),
    (2.4, EXECUTE, 3, 10, 1000, 1, 1002, 100, 1000, 90),
]


@pytest.mark.parametrize(("latency", "fill_at"), [(0.0, 1.6), (0.5, 2.4)])
def test_latency_delays_the_order_and_so_its_fill(latency: float, fill_at: float) -> None:
    # without latency the agent queues ahead of order 2 and fills when 2 trades; arriving 0.5 s
    # later it queues behind 2, and fills only when order 3 (behind it) trades
    replay = Replay(make_events(LATENCY_EVENTS), queue_model="ids", latency_ns=round(latency * S))
    replay.advance(at(1.0))
    replay.place(BID, 1000 * CENT, 100)
    fills = replay.advance(at(3.0))
    assert [(f["ts"], f["size"], f["reason"]) for f in fills] == [(at(fill_at), 100, FILL_PRIORITY)]


@pytest.mark.parametrize(("cancel_at", "filled"), [(1.8, 0), (2.1, 100)])
def test_a_cancel_in_flight_can_still_be_filled(cancel_at: float, filled: int) -> None:
    replay = Replay(make_events(LATENCY_EVENTS), queue_model="ids", latency_ns=S // 2)
    replay.advance(at(1.0))
    replay.place(BID, 1000 * CENT, 100)
    replay.advance(at(cancel_at))
    replay.cancel(BID)  # reaches the book 0.5 s later; the fill at 2.4 comes first if sent after 1.9
    replay.advance(at(3.0))
    assert replay.position == filled


# --- queue models without ids ------------------------------------------------------------------------

QUOTE_EVENTS = [
    (0.0, QUOTE, -1, 500, 1000, 1, 1002, 100, 1000, 500),
    # agent joins at 0.5: 500 ahead
    (1.0, QUOTE, -1, 600, 1000, 1, 1002, 100, 1000, 600),  # +100 behind
    (2.0, QUOTE, -1, 450, 1000, 1, 1002, 100, 1000, 450),  # -150, not a trade
    (3.0, EXECUTE, -1, 300, 1000, 1, 1002, 100, 1000, 450),  # a 300-share trade (quote not yet updated)
    (3.1, QUOTE, -1, 150, 1000, 1, 1002, 100, 1000, 150),  # the trade shows: no further decrease
    (4.0, EXECUTE, -1, 160, 1000, 1, 1002, 100, 1000, 150),
]


def test_risk_averse_queue_advances_only_with_trades() -> None:
    replay = Replay(make_events(QUOTE_EVENTS), queue_model="risk_averse")
    replay.advance(at(0.5))
    replay.place(BID, 1000 * CENT, 100)
    # the 150 decrease is assumed behind, but the queue ahead cannot exceed the 450 shown
    assert walk(replay, [0.6, 1.0, 2.0, 3.0, 3.1]) == [500, 500, 450, 150, 150]
    fills = replay.advance(at(4.0))
    assert [(f["event"], f["size"], f["reason"]) for f in fills] == [(5, 10, FILL_QUEUE)]
    assert replay.order(BID)["remaining"] == 90  # type: ignore[index]


def test_proportional_queue_shares_size_decreases_with_the_queue_behind() -> None:
    replay = Replay(make_events(QUOTE_EVENTS), queue_model="proportional")
    replay.advance(at(0.5))
    replay.place(BID, 1000 * CENT, 100)
    # -150 with 500 ahead and 100 behind: the queue ahead falls by 150 * 500/600 = 125; the
    # 300-share trade counts once (its later quote update is not a second decrease)
    assert walk(replay, [1.0, 2.0, 3.0, 3.1]) == [500, 375, 75, 75]
    fills = replay.advance(at(4.0))
    assert [(f["event"], f["size"], f["reason"]) for f in fills] == [(5, 85, FILL_QUEUE)]
    assert replay.order(BID)["remaining"] == 15  # type: ignore[index]


def test_the_default_queue_model_follows_the_data_and_ids_need_ids() -> None:
    quotes = make_events(QUOTE_EVENTS)
    assert Replay(quotes).model == 1  # risk_averse
    assert Replay(make_events(LATENCY_EVENTS)).model == 0  # ids
    with pytest.raises(EnvConfigError, match="needs order ids"):
        Replay(quotes, queue_model="ids")
    with pytest.raises(EnvConfigError, match="unknown queue_model"):
        Replay(quotes, queue_model="fifo")


# --- market orders and the position limit --------------------------------------------------------------


def test_market_orders_take_at_most_the_displayed_size_and_respect_the_limit() -> None:
    events = make_events(
        [
            (0.0, SUBMIT, 1, 100, 1000, 1, 1002, 60, 1000, 100),
            (1.0, SUBMIT, 2, 100, 1002, -1, 1002, 160, 1000, 100),
        ]
    )
    replay = Replay(events, position_limit=100)
    replay.advance(at(0.5))
    replay.market(300)  # 60 shown at the ask
    fills = replay.advance(at(0.6))
    assert [(f["price"], f["size"], f["reason"]) for f in fills] == [(1002 * CENT, 60, FILL_MARKET)]
    replay.place(BID, 1000 * CENT, 100)  # trimmed on arrival: 40 more would reach the limit
    replay.advance(at(0.7))
    assert replay.order(BID)["remaining"] == 40  # type: ignore[index]
    replay.market(100)  # the resting 40 could fill: no room left for a market buy
    assert len(replay.advance(at(1.5))) == 0
    replay.market(-100)
    fills = replay.advance(at(1.6))
    assert [(f["price"], f["size"], f["side"]) for f in fills] == [(1000 * CENT, 100, -1)]
    assert replay.position == -40


def test_requests_in_flight_and_bad_inputs_are_refused() -> None:
    events = make_events(LATENCY_EVENTS)
    replay = Replay(events, latency_ns=S)
    replay.advance(at(0.5))
    replay.place(BID, 1000 * CENT, 100)
    with pytest.raises(ReplayError, match="still in flight"):
        replay.place(BID, 999 * CENT, 100)
    with pytest.raises(ReplayError, match="before the replay's time"):
        replay.advance(at(0.1))
    with pytest.raises(ReplayError, match="side must be"):
        replay.cancel(0)
    backwards = make_events(
        [(1.0, QUOTE, -1, 1, 1000, 1, 1002, 1, 1000, 1), (0.5, QUOTE, -1, 1, 1000, 1, 1002, 1, 1000, 1)]
    )
    with pytest.raises(DataValidationError, match="back in time at row 1"):
        Replay(backwards)


def test_own_orders_are_recorded_per_event() -> None:
    replay = Replay(make_events(LATENCY_EVENTS), record_own=True)
    replay.advance(at(1.0))
    replay.place(BID, 1000 * CENT, 100)
    replay.advance(at(3.0))
    own = replay.own_orders()
    assert own.bid_size.tolist() == [0, 100, 100, 0, 0, 0, 0]  # filled at 1.6 (row 3)
    assert own.bid_price[1] == 1000 * CENT and not own.ask_size.any()


# --- against an explicit price-time-priority simulation --------------------------------------------------


def _joins(events: Events, n: int, seed: int, lo: int) -> list[tuple[int, int, int]]:
    """``n`` random (row, side, price): join the displayed best of a side right after ``row``."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, int, int]] = []
    while len(out) < n:
        j = int(rng.integers(lo, len(events) - 200))
        while events.ts[j + 1] == events.ts[j]:  # between two timestamps
            j += 1
        side = int(rng.choice((BID, ASK)))
        size = events.bid_size[j] if side == BID else events.ask_size[j]
        if size > 0:
            out.append((j, side, int(events.bid_price[j] if side == BID else events.ask_price[j])))
    return out


def _cumulative(fills: list[tuple[int, int]], n: int) -> np.ndarray:
    out = np.zeros(n + 1, dtype=np.int64)
    for row, size in fills:
        out[row + 1] += size
    return np.cumsum(out)


def _engine(events: Events, model: str, t: int, side: int, price: int, original: np.ndarray) -> list[tuple[int, int]]:
    """The replay's fills (as rows of the full session) of an order placed at time ``t``."""
    replay = Replay(events, queue_model=model)
    replay.advance(t)
    replay.place(side, price, 100)
    fills = replay.advance(int(events.ts[-1]))
    return [(int(original[f["event"]]), int(f["size"])) for f in fills]


def test_ids_model_is_exact_on_a_full_depth_stream(session_5k: Events) -> None:
    """Every order known, joined at the touch: the fills are those of explicit price-time priority."""
    rows = np.arange(len(session_5k))
    n_filled = 0
    for row, side, price in _joins(session_5k, 25, seed=0, lo=200):
        truth = fifo_truth(session_5k, row, side, price, 100)
        t = int(session_5k.ts[row])
        assert _engine(session_5k, "ids", t, side, price, rows) == truth, (row, side, price)
        n_filled += bool(truth)
    assert n_filled >= 20  # the comparison is about fills, not about empty lists


def test_models_are_conservative_on_a_level1_file_that_starts_late(session_5k: Events) -> None:
    """LOBSTER-like input (level-1 rows only, orders from before the file unknown): the ids and
    risk-averse models never fill earlier or more than the truth, ids never less than risk-averse,
    proportional never less than risk-averse."""
    keep = level1_rows(session_5k)
    keep[:1000] = False
    original = np.flatnonzero(keep)
    level1 = subset(session_5k, keep)
    quotes = quotes_only(level1)
    quote_rows = original[level1.kind != HIDDEN]
    n = len(session_5k)
    for row, side, price in _joins(session_5k, 20, seed=1, lo=1200):
        t = int(session_5k.ts[row])
        truth = _cumulative(fifo_truth(session_5k, row, side, price, 100), n)
        ids = _cumulative(_engine(level1, "ids", t, side, price, original), n)
        averse = _cumulative(_engine(level1, "risk_averse", t, side, price, original), n)
        averse_q = _cumulative(_engine(quotes, "risk_averse", t, side, price, quote_rows), n)
        proportional = _cumulative(_engine(quotes, "proportional", t, side, price, quote_rows), n)
        assert np.all(ids <= truth) and np.all(averse <= truth) and np.all(averse_q <= truth), (row, side)
        assert np.all(averse <= ids), (row, side)
        assert np.all(averse_q <= proportional), (row, side)


# --- the numba policy loop -----------------------------------------------------------------------------


def _python_quote_loop(events: Events, interval: int, start: int, end: int, size: int, limit: int) -> np.ndarray:
    """The quote-at-the-touch policy driven from Python through the Replay API."""
    replay = Replay(events, position_limit=limit)
    t = start
    while t <= end:
        replay.advance(t)
        book = replay.book()
        for side, price, shown in (
            (BID, book["bid_price"], book["bid_size"]),
            (ASK, book["ask_price"], book["ask_size"]),
        ):
            if shown > 0 and limit - side * replay.position >= size:
                replay.place(side, price, size)
            elif replay.order(side) is not None:
                replay.cancel(side)
        t += interval
    return replay.fills()


def test_quote_at_touch_loop_matches_the_same_policy_driven_from_python(session_5k: Events) -> None:
    start, end = int(session_5k.ts[100]), int(session_5k.ts[-1])
    interval = S // 10
    result = quote_at_touch_loop(session_5k, interval, start_ns=start, end_ns=end)
    expected = _python_quote_loop(session_5k, interval, start, end, 100, 100)
    assert len(expected) > 10
    assert result.fills.tolist() == expected.tolist()
    assert result.n_decisions == (end - start) // interval + 1
    assert result.position == int((expected["side"] * expected["size"]).sum())
    assert abs(result.position) <= 100


def test_a_full_fill_log_grows_without_changing_anything(session_5k: Events, monkeypatch: pytest.MonkeyPatch) -> None:
    start, end, interval = int(session_5k.ts[100]), int(session_5k.ts[-1]), S // 20
    expected = quote_at_touch_loop(session_5k, interval, start_ns=start, end_ns=end)
    small = replay_module.FillLog
    monkeypatch.setattr(replay_module, "FillLog", lambda capacity=0: small(0))  # 16 rows to start
    assert len(expected.fills) > 30
    grown = quote_at_touch_loop(session_5k, interval, start_ns=start, end_ns=end)
    assert grown.fills.tolist() == expected.fills.tolist()
    assert (grown.position, grown.cash, grown.n_decisions) == (expected.position, expected.cash, expected.n_decisions)
    assert _python_quote_loop(session_5k, interval, start, end, 100, 100).tolist() == expected.fills.tolist()
