"""Order-book features (OFI, book ratio, spread, mid) against brute-force loops on random books,
and their causality: the values at decision times <= t never depend on the events after t."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rltrade.data.ticks.schema import QUOTE, Events
from rltrade.features.base import FeatureError
from rltrade.features.orderbook import (
    FEATURE_COLUMNS,
    OwnOrders,
    ofi_contributions,
    orderbook_features,
    orderbook_frame,
    trailing_sum,
)

S = 1_000_000_000
T0 = int(pd.Timestamp("2012-06-21 10:00", tz="America/New_York").value)


def random_book(n: int, seed: int, empty_share: float = 0.0) -> Events:
    """A level-I book that moves by whole cents, often not at all (ties), with repeated timestamps."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.choice([0, 0, 1, 5, 300], size=n) * 10_000_000)
    bid = 1_000_000 + np.cumsum(rng.choice([-100, 0, 0, 0, 100], size=n))
    ask = bid + 100 * rng.integers(1, 4, size=n)
    bid_size = rng.integers(0 if empty_share else 1, 500, size=n)
    ask_size = rng.integers(1, 500, size=n)
    if empty_share:
        ask_size[rng.random(n) < empty_share] = 0
    return Events(
        symbol="R",
        date="2012-06-21",
        ts=ts.astype(np.int64),
        kind=np.full(n, QUOTE, dtype=np.int8),
        order_id=np.full(n, -1, dtype=np.int64),
        size=bid_size.astype(np.int64),
        price=bid.astype(np.int64),
        side=np.ones(n, dtype=np.int8),
        ask_price=ask.astype(np.int64),
        ask_size=ask_size.astype(np.int64),
        bid_price=bid.astype(np.int64),
        bid_size=bid_size.astype(np.int64),
    )


def brute_contribution(ev: Events, n: int) -> int:
    """e_n of Cont, Kukanov & Stoikov (2014), written out term by term."""
    if n == 0:
        return 0
    pb, pb0, qb, qb0 = ev.bid_price[n], ev.bid_price[n - 1], ev.bid_size[n], ev.bid_size[n - 1]
    pa, pa0, qa, qa0 = ev.ask_price[n], ev.ask_price[n - 1], ev.ask_size[n], ev.ask_size[n - 1]
    e = 0
    if pb >= pb0:
        e += qb
    if pb <= pb0:
        e -= qb0
    if pa <= pa0:
        e -= qa
    if pa >= pa0:
        e += qa0
    return int(e)


def brute_features(ev: Events, times: np.ndarray, window: int, tick: int = 100) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {c: [] for c in FEATURE_COLUMNS}
    for t in times:
        ofi = sum(brute_contribution(ev, n) for n in range(len(ev)) if t - window < ev.ts[n] <= t)
        out["ofi"].append(float(ofi))
        last = [n for n in range(len(ev)) if ev.ts[n] <= t]
        if not last or ev.bid_size[last[-1]] == 0 or ev.ask_size[last[-1]] == 0:
            for c in FEATURE_COLUMNS[1:]:
                out[c].append(math.nan)
            continue
        n = last[-1]
        qb, qa = float(ev.bid_size[n]), float(ev.ask_size[n])
        out["book_ratio"].append(qb / qa)
        out["log_book_ratio"].append(math.log(qb / qa))
        out["spread_ticks"].append((ev.ask_price[n] - ev.bid_price[n]) / tick)
        out["mid"].append((ev.ask_price[n] + ev.bid_price[n]) / 2 / 10_000)
    return out


def decision_times(ev: Events, seed: int, n: int = 60) -> np.ndarray:
    """Random times plus the hard ones: before the first event, on an event, on a window edge."""
    rng = np.random.default_rng(seed)
    lo, hi = int(ev.ts[0]) - 2 * S, int(ev.ts[-1]) + 2 * S
    picks = rng.integers(lo, hi, size=n)
    on_event = ev.ts[rng.integers(0, len(ev), size=10)]
    return np.sort(np.concatenate([picks, on_event, on_event + 3 * S, [lo]])).astype(np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ofi_contributions_match_the_definition(seed: int) -> None:
    ev = random_book(400, seed)
    e = ofi_contributions(ev.bid_price, ev.bid_size, ev.ask_price, ev.ask_size)
    assert e.tolist() == [brute_contribution(ev, n) for n in range(len(ev))]
    assert np.count_nonzero(np.diff(ev.bid_price) == 0) > 100  # ties are exercised


@pytest.mark.parametrize(("seed", "empty"), [(0, 0.0), (3, 0.1)])
def test_features_match_a_brute_force_loop(seed: int, empty: float) -> None:
    ev = random_book(300, seed, empty_share=empty)
    times = decision_times(ev, seed)
    window = 3 * S
    got = orderbook_features(ev, times, ofi_window_ns=window)
    want = brute_features(ev, times, window)
    for column in FEATURE_COLUMNS:
        np.testing.assert_allclose(got[column], want[column], rtol=1e-12, equal_nan=True, err_msg=column)
    assert np.isnan(got["mid"][0]) and got["ofi"][0] == 0.0  # before the first event


def test_the_window_excludes_its_left_edge_and_includes_t() -> None:
    ts = np.array([0, 10, 20, 30], dtype=np.int64)
    values = np.array([1, 2, 4, 8], dtype=np.int64)
    assert trailing_sum(ts, values, np.array([20, 30, 29, 40]), 10).tolist() == [4, 8, 4, 0]
    with pytest.raises(FeatureError, match="window_ns must be > 0"):
        trailing_sum(ts, values, np.array([1]), 0)


@pytest.mark.parametrize("seed", [4, 5])
def test_features_are_causal(seed: int) -> None:
    """(a) all events, (b) only the events up to t, (c) every event after t randomly changed:
    bit-identical features at the decision times <= t."""
    ev = random_book(500, seed)
    times = decision_times(ev, seed, n=80)
    rng = np.random.default_rng(seed)
    full = orderbook_features(ev, times, ofi_window_ns=2 * S)
    names = ("ts", "kind", "order_id", "size", "price", "side", "ask_price", "ask_size", "bid_price", "bid_size")
    for cut in rng.choice(len(ev) - 1, size=6, replace=False):
        t = int(ev.ts[cut])
        keep = ev.ts <= t
        upto = Events(symbol="R", date=ev.date, **{n: getattr(ev, n)[keep] for n in names})
        later = ~keep
        changed = {n: getattr(ev, n).copy() for n in names}
        for column in ("ask_size", "bid_size"):
            changed[column][later] = rng.integers(0, 1000, int(later.sum()))
        for column in ("ask_price", "bid_price"):
            changed[column][later] += 100 * rng.integers(-5, 6, int(later.sum()))
        perturbed = Events(symbol="R", date=ev.date, **changed)
        at_or_before = times <= t
        for variant in (upto, perturbed):
            got = orderbook_features(variant, times, ofi_window_ns=2 * S)
            for column in FEATURE_COLUMNS:
                a, b = full[column][at_or_before], got[column][at_or_before]
                assert a.tobytes() == b.tobytes(), (column, t)
        # the perturbation is real: something after t differs
        assert any(full[c][~at_or_before].tobytes() != got[c][~at_or_before].tobytes() for c in FEATURE_COLUMNS)


def test_own_orders_count_only_at_the_displayed_best() -> None:
    ev = random_book(50, 9)
    n = len(ev)
    own = OwnOrders(
        bid_price=ev.bid_price.copy(),  # always at the best bid
        bid_size=np.full(n, 100, dtype=np.int64),
        ask_price=ev.ask_price + 100,  # one tick behind the best ask: not displayed there
        ask_size=np.full(n, 100, dtype=np.int64),
    )
    times = ev.ts[[10, 20, 30]]
    plain = orderbook_features(ev, times)
    with_own = orderbook_features(ev, times, own=own)
    idx = [10, 20, 30]
    np.testing.assert_allclose(with_own["book_ratio"], (ev.bid_size[idx] + 100) / ev.ask_size[idx])
    np.testing.assert_array_equal(with_own["spread_ticks"], plain["spread_ticks"])
    with pytest.raises(FeatureError, match="one value per event"):
        orderbook_features(ev, times, own=OwnOrders(own.bid_price[:3], own.bid_size, own.ask_price, own.ask_size))


def test_frame_and_errors() -> None:
    ev = random_book(40, 2)
    frame = orderbook_frame(ev, ev.ts[[5, 6]])
    assert list(frame.columns) == list(FEATURE_COLUMNS)
    assert frame.index.name == "timestamp" and str(frame.index.tz) == "UTC"
    assert frame.index[0].value == ev.ts[5]
    backwards = Events(**{**ev.__dict__, "ts": ev.ts[::-1].copy()})
    with pytest.raises(FeatureError, match="not sorted"):
        orderbook_features(backwards, ev.ts[:2])
