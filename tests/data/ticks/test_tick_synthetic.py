"""synthetic_events: seeded, valid, and a real book: every event and every L1 row checked by a plain replay."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from rltrade.data.ticks import (
    CANCEL,
    DELETE,
    EMPTY_ASK_PRICE,
    EMPTY_BID_PRICE,
    EVENT_COLUMNS,
    EXECUTE,
    HIDDEN,
    SUBMIT,
    Events,
    synthetic_events,
    validate_events,
)

ORDER_COLUMNS = ("kind", "order_id", "size", "price", "side")


@pytest.fixture(scope="module")
def short() -> Events:
    return synthetic_events(seconds=2400, seed=11)


@pytest.fixture(scope="module")
def day() -> Events:
    return synthetic_events(seed=0)


def replay(events: Events) -> dict[str, int]:
    """Rebuild the book from the events alone (dicts of FIFO queues) and check each event and L1 row.

    Returns counts of what was seen (submissions inside the spread, at the touch, ...).
    """
    # side -> price -> OrderedDict(order id -> remaining size), in arrival order
    book: dict[int, dict[int, OrderedDict[int, int]]] = {1: {}, -1: {}}
    where: dict[int, tuple[int, int]] = {}  # order id -> (side, price)
    seen_ids: set[int] = set()
    counts = {"inside": 0, "touch": 0, "behind": 0, "walks": 0}

    def best(side: int) -> int | None:
        levels = [p for p, q in book[side].items() if q]
        return (max(levels) if side == 1 else min(levels)) if levels else None

    for i in range(len(events)):
        kind, oid, size, price, side = (int(getattr(events, c)[i]) for c in ORDER_COLUMNS)
        bid, ask = best(1), best(-1)
        if kind == SUBMIT:
            assert oid not in seen_ids, f"event {i}: order id {oid} reused"
            seen_ids.add(oid)
            same, other = (bid, ask) if side == 1 else (ask, bid)
            if other is not None:
                assert (price < other) if side == 1 else (price > other), f"event {i}: a resting order crosses"
            if same is None or (side == 1 and price > same) or (side == -1 and price < same):
                counts["inside"] += same is not None
            elif price == same:
                counts["touch"] += 1
            else:
                counts["behind"] += 1
            book[side].setdefault(price, OrderedDict())[oid] = size
            where[oid] = (side, price)
        elif kind in (CANCEL, DELETE, EXECUTE):
            assert oid in where, f"event {i}: order {oid} is not resting"
            s, p = where[oid]
            assert (s, p) == (side, price), f"event {i}: order {oid} rests at {(s, p)}, event says {(side, price)}"
            queue = book[s][p]
            left = queue[oid]
            if kind == CANCEL:
                assert 0 < size < left, f"event {i}: partial cancel of {size} from {left}"
            elif kind == DELETE:
                assert size == left, f"event {i}: delete of {size} but {left} rest"
            else:
                assert p == (bid if s == 1 else ask), f"event {i}: execution away from the touch"
                assert next(iter(queue)) == oid, f"event {i}: execution skips older orders at the level"
                assert 0 < size <= left
                if i and events.ts[i] == events.ts[i - 1] and int(events.kind[i - 1]) == EXECUTE:
                    counts["walks"] += int(events.price[i - 1]) != price
            if kind == DELETE or size == left:
                del queue[oid]
                del where[oid]
            else:
                queue[oid] = left - size
        elif kind == HIDDEN:
            assert oid == -1 and bid is not None and ask is not None and bid <= price <= ask, f"event {i}"
        else:
            raise AssertionError(f"event {i}: unexpected kind {kind}")
        bid, ask = best(1), best(-1)
        expected = (
            ask if ask is not None else EMPTY_ASK_PRICE,
            sum(book[-1][ask].values()) if ask is not None else 0,
            bid if bid is not None else EMPTY_BID_PRICE,
            sum(book[1][bid].values()) if bid is not None else 0,
        )
        row = tuple(int(getattr(events, c)[i]) for c in ("ask_price", "ask_size", "bid_price", "bid_size"))
        assert row == expected, f"event {i}: L1 {row}, the replayed book says {expected}"
    return counts


def test_every_event_and_book_row_agree_with_a_replay(short: Events) -> None:
    counts = replay(short)
    kinds = set(np.unique(short.kind).tolist())
    assert kinds == {SUBMIT, CANCEL, DELETE, EXECUTE, HIDDEN}
    assert counts["inside"] > 50 and counts["touch"] > 50 and counts["behind"] > 50, counts
    assert counts["walks"] > 0, counts  # some marketable orders take more than one level


def test_seeded(short: Events) -> None:
    again = synthetic_events(seconds=2400, seed=11)
    other = synthetic_events(seconds=2400, seed=12)
    for col in EVENT_COLUMNS:
        np.testing.assert_array_equal(getattr(again, col), getattr(short, col))
    assert len(other) != len(short) or not np.array_equal(other.price, short.price)


def test_names_prices_and_times(short: Events) -> None:
    assert (short.symbol, short.date, short.tz) == ("SYN", "2024-01-02", "America/New_York")
    # 2024-01-02 09:30 EST = 14:30 UTC; the opening burst is stamped at the open
    assert short.ts[0] == (19_724 * 86400 + 14 * 3600 + 30 * 60) * 10**9
    assert short.ts[-1] - short.ts[0] <= 2400 * 10**9
    assert (short.price[short.kind != HIDDEN] % 100 == 0).all()  # on the one-cent grid
    tick5 = synthetic_events(seconds=300, seed=1, tick=500, price=250.0, symbol="T5", date="2024-07-01")
    assert (tick5.price % 500 == 0).all() and (tick5.bid_price[tick5.bid_size > 0] % 500 == 0).all()
    assert tick5.ts[0] == (19_905 * 86400 + 13 * 3600 + 30 * 60) * 10**9  # 09:30 EDT = 13:30 UTC


def test_a_session_is_like_the_sample_in_size_and_moves(day: Events) -> None:
    """One 6.5-hour session: 50k-100k events, the mid's 5-minute moves add up to about ``daily_move`` dollars."""
    validate_events(day)
    assert 50_000 <= len(day) <= 100_000
    grid = day.ts[0] + np.arange(0, 23_400, 300) * 10**9
    at = np.searchsorted(day.ts, grid, side="right") - 1
    mid = (day.ask_price[at] + day.bid_price[at]) / 2 / 1e4
    realised = float(np.sqrt((np.diff(mid) ** 2).sum()))
    assert 1.0 < realised < 4.0, realised  # daily_move defaults to 2 dollars
    both = (day.ask_size > 0) & (day.bid_size > 0)
    assert both[1:].all()  # after the first submission, both sides are always there (at this seed)
    spread = (day.ask_price - day.bid_price)[both] // 100
    assert np.median(spread) <= 5 and spread.min() >= 1


def test_empty_side_at_the_open_uses_the_dummy_price(short: Events) -> None:
    assert short.kind[0] == SUBMIT and short.side[0] == 1
    assert (short.ask_price[0], short.ask_size[0]) == (EMPTY_ASK_PRICE, 0)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="seconds"):
        synthetic_events(seconds=0)
    with pytest.raises(ValueError, match="order_life"):
        synthetic_events(order_life=0)
