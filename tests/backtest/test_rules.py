"""Seed 002's trading rules: hand-worked bar sequences (fills, stops, gaps, the daily stop), sizing, caps,
costs against the cost model, the accounting against the events log, no lookahead, state carry-over."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rltrade.backtest.rules import (
    Bar,
    PriceBars,
    RulesError,
    RulesState,
    Signals,
    TradingRules,
    sessions_of,
    simulate,
)
from rltrade.backtest.runner import Trajectory
from rltrade.envs.costs import BpsCost, NoCost, PerShareCost, SpreadCost, spread_volatility
from rltrade.envs.timing import EnvConfigError
from rltrade.errors import DataValidationError
from rltrade.testing import synthetic_bars

INITIAL = 100_000.0
# 10% of equity per position, stop 2% and take-profit 4% of the entry price; no daily stop unless a test sets one.
RULES = TradingRules(allocation=0.10, stop_loss=0.02, take_profit=0.04, daily_stop=None)


def directions(d: Any) -> Signals:
    """Signals that all agree: +1 a long signal, -1 a short signal, 0 neither (P(up) = 0.5 passes no threshold)."""
    d = np.asarray(d, dtype=np.float64)
    if d.ndim == 1:
        d = d[:, None]
    return Signals(d > 0, np.where(d > 0, 0.7, np.where(d < 0, 0.3, 0.5)), 0.5 * d)


def ohlc(rows: list[tuple[float, float, float, float]], **kwargs: Any) -> PriceBars:
    """One symbol's bars from (open, high, low, close) rows."""
    o, h, lo, c = (np.array(col, dtype=np.float64) for col in zip(*rows, strict=True))
    return PriceBars(close=c, open=o, high=h, low=lo, **kwargs)


def exits(result: Any) -> pd.DataFrame:
    return result.events[(result.events["event"] == "exit") & result.events["filled"]].reset_index(drop=True)


def entries(result: Any) -> pd.DataFrame:
    return result.events[result.events["event"] == "entry"].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Hand-worked stop sequences
# --------------------------------------------------------------------------------------------


def test_long_stopped_out_in_its_entry_bar_with_costs() -> None:
    # Bar 0 closes at 100 with a long signal: 10% of 100,000 at 100 = 100 shares, bought at bar 1's open (100).
    # Stop = 100 * 0.98 = 98, take-profit = 104. Bar 1's low 97.5 reaches the stop: sold at 98.
    # 10 bps per side: entry 0.001 * 10,000 = 10, exit 0.001 * 9,800 = 9.8.
    # Cash = 100,000 - 10,000 - 10 + 9,800 - 9.8 = 99,780.2, and it stays there (flat, no signal).
    bars = ohlc([(100, 101, 99, 100), (100, 101, 97.5, 98), (98, 99, 97, 98.5)])
    result = simulate(bars, directions([1, 0, 0]), RULES, cost=BpsCost(10), initial_value=INITIAL)
    np.testing.assert_allclose(result.values, [INITIAL, 99_780.2, 99_780.2], rtol=1e-12)
    np.testing.assert_allclose(result.costs, [0.0, 19.8, 0.0], rtol=1e-12)
    np.testing.assert_allclose(result.turnover, [0.0, (10_000 + 9_800) / INITIAL, 0.0], rtol=1e-12)
    np.testing.assert_array_equal(result.holdings[:, 0], [0, 0, 0])
    entry, exit_ = entries(result).iloc[0], exits(result).iloc[0]
    assert (entry["bar"], entry["quantity"], entry["price"]) == (1, 100.0, 100.0)
    assert (exit_["bar"], exit_["reason"], exit_["quantity"], bool(exit_["gap"])) == (1, "stop_loss", -100.0, False)
    assert exit_["price"] == pytest.approx(98.0) and exit_["trigger"] == pytest.approx(98.0)
    assert exit_["pnl"] == pytest.approx(-200.0)
    assert result.stops_checked_on == "high_low"
    assert result.timing.name == "next_open"


# (open, high, low, close) of bar 2 after a quiet entry bar 1 (entered at 100); expected exit (price, reason, gap).
LONG_CASES = {
    "stop_touched": ((99, 100, 97.9, 99), (98.0, "stop_loss", False)),
    "take_profit_touched": ((101, 104.2, 100.5, 103), (104.0, "take_profit", False)),
    # Both levels inside one bar, order unknown: assume the worst, the stop.
    "both_touched_stop_first": ((100, 105, 97, 101), (98.0, "stop_loss", False)),
    # The open is already below the stop: the stop order fills at the open, not at 98.
    "gap_through_stop": ((95, 96, 94, 95.5), (95.0, "stop_loss", True)),
    # The open is already above the take-profit: conservatively at the take-profit price, not at the open.
    "gap_through_take_profit": ((106, 107, 105, 106), (104.0, "take_profit", True)),
    # A gap up through the take-profit then a fall through the stop: the open came first, so the take-profit.
    "gap_take_profit_then_low": ((106, 107, 97, 98), (104.0, "take_profit", True)),
    "nothing_touched": ((100, 103.9, 98.1, 101), None),
}


@pytest.mark.parametrize("side", [1, -1], ids=["long", "short"])
@pytest.mark.parametrize("case", list(LONG_CASES))
def test_stop_and_take_profit_fills(case: str, side: int) -> None:
    # A short is the long mirrored around the entry price 100: p -> 200 - p (its high is the long's low).
    # Short: stop = 100 * 1.02 = 102 above, take-profit = 96 below; the expected fill mirrors too.
    bar2, expected = LONG_CASES[case]

    def mirror(p: float) -> float:
        return p if side > 0 else 200.0 - p

    o, h, lo, c = bar2
    rows = [
        (100, 100.5, 99.5, 100),
        (100, 100.5, 99.5, 100),
        (mirror(o), max(mirror(h), mirror(lo)), min(mirror(h), mirror(lo)), mirror(c)),
    ]
    result = simulate(ohlc(rows), directions([side, 0, 0]), RULES, initial_value=INITIAL)
    assert entries(result)["price"].tolist() == [100.0] and entries(result)["quantity"].tolist() == [100.0 * side]
    done = exits(result)
    if expected is None:
        assert done.empty and result.holdings[-1, 0] == 100 * side
        ends = result.events[result.events["reason"] == "end"]
        assert len(ends) == 1 and not bool(ends["filled"].iloc[0])
        return
    price, reason, gap = expected
    assert len(done) == 1
    row = done.iloc[0]
    assert (row["bar"], row["reason"], bool(row["gap"]), row["side"]) == (2, reason, gap, side)
    assert row["price"] == pytest.approx(mirror(price), rel=1e-12)
    # No costs: equity = 100,000 + 100 * (exit - entry) for a long, 100 * (entry - exit) for a short.
    pnl = 100.0 * side * (mirror(price) - 100.0)
    assert row["pnl"] == pytest.approx(pnl, rel=1e-12)
    assert result.values[-1] == pytest.approx(INITIAL + pnl, rel=1e-12)


def test_close_only_stops_use_the_close_and_next_close_fills() -> None:
    # No opens: the default timing is next_close. Bar 0's long signal fills at bar 1's close (100): 100 shares.
    # Stops are checked on closes only: bar 2 closes at 97 <= 98, so the stop fills at that close, 97
    # (the stop level itself is not proven to have traded). A rise to 105 instead fills the take-profit at 104.
    for last, price, reason in ((97.0, 97.0, "stop_loss"), (105.0, 104.0, "take_profit")):
        bars = PriceBars(close=np.array([100.0, 100.0, last, last]))
        result = simulate(bars, directions([1, 0, 0, 0]), RULES, initial_value=INITIAL)
        assert result.timing.name == "next_close" and result.stops_checked_on == "close"
        assert entries(result)[["bar", "price"]].values.tolist() == [[1, 100.0]]
        row = exits(result).iloc[0]
        assert (row["bar"], row["reason"], row["price"]) == (2, reason, pytest.approx(price))
        np.testing.assert_allclose(
            result.values, [INITIAL, INITIAL, INITIAL + 100 * (price - 100), INITIAL + 100 * (price - 100)]
        )


def test_next_close_stop_inside_the_bar_comes_before_a_pending_signal_exit() -> None:
    # next_close with highs and lows: long 100 shares at bar 1's close (100). Bar 2 closes with a short signal
    # (the exit is pending for bar 3's close), but bar 3's low 97 reaches the stop first: one exit, at 98.
    bars = ohlc([(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 100.5, 99.5, 100), (99, 99.5, 97, 97.5)])
    rules = TradingRules(stop_loss=0.02, take_profit=None, daily_stop=None, allow_short=False)
    result = simulate(bars, directions([1, 0, -1, 0]), rules, timing="next_close", initial_value=INITIAL)
    done = exits(result)
    assert done[["bar", "reason"]].values.tolist() == [[3, "stop_loss"]]
    assert done["price"].iloc[0] == pytest.approx(98.0)
    assert result.values[-1] == pytest.approx(INITIAL - 200.0)


def test_same_close_fills_at_the_decision_close() -> None:
    # same_close: bar 0's signal buys at bar 0's own close (100); bar 1's high 104.5 takes profit at 104.
    bars = ohlc([(100, 100, 100, 100), (101, 104.5, 100.5, 103)])
    result = simulate(bars, directions([1, 0]), RULES, timing="same_close", cost=BpsCost(10), initial_value=INITIAL)
    assert entries(result)[["bar", "price"]].values.tolist() == [[0, 100.0]]
    # Row 0 already pays the entry cost: 0.001 * 10,000 = 10. Row 1: +400 and 0.001 * 10,400 = 10.4.
    np.testing.assert_allclose(result.values, [INITIAL - 10.0, INITIAL - 10.0 + 400.0 - 10.4], rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Sizing, caps, shorting, exit rules
# --------------------------------------------------------------------------------------------


def bar_of(close: Any, d: Any, session: Any = 0, rl: Any = None) -> Bar:
    s = directions(np.asarray(d, dtype=np.float64)[None, :])
    return Bar(
        session,
        np.asarray(close, dtype=np.float64),
        s.lstm_up[0],
        s.p_up[0],
        s.rl_signal[0] if rl is None else np.asarray(rl),
    )


def test_allocation_is_a_fraction_of_current_equity_in_whole_shares() -> None:
    # Cash 50,000 and 100 shares of A at 200: equity 70,000. 10% = 7,000. B at 69: floor(101.4) = 101 shares;
    # C at 7,001 buys none (7,000 / 7,001 < 1) and is skipped.
    state = RulesState(("A", "B", "C"), 50_000.0, np.array([100.0, 0, 0]), np.array([190.0, np.nan, np.nan]), 70_000.0)
    decision = RULES.decide(state, bar_of([200.0, 69.0, 7_001.0], [0, 1, 1]))
    assert [(o.asset, o.action, o.side, o.shares) for o in decision.orders] == [(1, "entry", 1, 101.0)]
    assert decision.state.equity == pytest.approx(70_000.0)
    # Exactly 10%: 10,000 at 100 is 100 shares (the floor is not fooled by rounding of 0.1 * equity).
    state = RulesState.initial(("A",), 100_000.0)
    assert RULES.decide(state, bar_of([100.0], [1])).orders[0].shares == 100.0


def test_caps_take_the_strongest_signals_first() -> None:
    # Four long candidates at 10 with |rl| 0.2, 0.9, 0.5, 0.7: at most 2 positions -> B (0.9) and D (0.7).
    state = RulesState.initial(("A", "B", "C", "D"), 100_000.0)
    rules = TradingRules(max_positions=2, daily_stop=None)
    bar = bar_of([10.0] * 4, [1, 1, 1, 1], rl=[0.2, 0.9, 0.5, 0.7])
    assert [(o.asset, o.shares) for o in rules.decide(state, bar).orders] == [(1, 1000.0), (3, 1000.0)]
    # Gross exposure at most 25% of equity: B and D take 10% each, C gets the 5% left (500 shares), A none.
    rules = TradingRules(max_gross_exposure=0.25, daily_stop=None)
    assert [(o.asset, o.shares) for o in rules.decide(state, bar).orders] == [(1, 1000.0), (3, 1000.0), (2, 500.0)]
    # A held position counts: A long 2,000 shares (20% of equity) leaves room for one 5% entry (B, 500).
    held = RulesState(
        state.symbols, 80_000.0, np.array([2000.0, 0, 0, 0]), np.array([10.0, np.nan, np.nan, np.nan]), 1e5
    )
    assert [(o.asset, o.shares) for o in rules.decide(held, bar).orders] == [(1, 500.0)]


def test_shorting_off_short_signals_only_close_longs() -> None:
    rules = TradingRules(allow_short=False, daily_stop=None)
    flat = RulesState.initial(("A", "B"), 100_000.0)
    assert rules.decide(flat, bar_of([100.0, 50.0], [-1, -1])).orders == ()
    held = RulesState(("A", "B"), 90_000.0, np.array([100.0, 0]), np.array([100.0, np.nan]), 100_000.0)
    orders = rules.decide(held, bar_of([100.0, 50.0], [-1, -1])).orders
    assert [(o.asset, o.action, o.side, o.reason) for o in orders] == [(0, "exit", 1, "signal")]
    # In a backtest: a long entered on bar 0, a short signal on bar 2 sells it at bar 3's open; no short follows.
    bars = ohlc([(100, 100.5, 99.5, 100)] * 2 + [(100, 100.5, 99.5, 101), (101.5, 102, 101, 101.5)])
    result = simulate(bars, directions([1, 0, -1, -1]), rules, initial_value=INITIAL)
    np.testing.assert_array_equal(result.holdings[:, 0], [0, 100, 100, 0])
    assert (result.holdings >= 0).all() and result.values[-1] == pytest.approx(INITIAL + 150.0)


@pytest.mark.parametrize(
    ("exit_rule", "signal", "expected"),
    [
        # opposite: the mirror signal closes the long and opens a short at the same open (a flip);
        ("opposite", -1, [0, 100, 100, -99]),
        # a neutral signal keeps the long;
        ("opposite", 0, [0, 100, 100, 100]),
        # conditions: the long closes as soon as its own conditions stop holding;
        ("conditions", 0, [0, 100, 100, 0]),
        ("conditions", -1, [0, 100, 100, -99]),
        # stops_only: signals never close a position.
        ("stops_only", -1, [0, 100, 100, 100]),
    ],
)
def test_exit_rules(exit_rule: str, signal: int, expected: list[float]) -> None:
    # Long 100 at 100 (bar 1); bar 2 closes at 101 with `signal`. The flip's short is sized at bar 2's close:
    # equity 100,100, 10% = 10,010 / 101 = 99.1 -> 99 shares, sold at bar 3's open (101).
    bars = ohlc(
        [(100, 100.5, 99.5, 100), (100, 100.5, 99.5, 100), (100.5, 101.5, 100.5, 101), (101, 101.5, 100.5, 101)]
    )
    rules = TradingRules(stop_loss=None, take_profit=None, daily_stop=None, exit_rule=exit_rule)
    result = simulate(bars, directions([1, 1, signal, 0]), rules, initial_value=INITIAL)
    np.testing.assert_array_equal(result.holdings[:, 0], expected)
    if expected[-1] == -99:
        fills = result.events[result.events["filled"]]
        assert fills[fills["bar"] == 3]["event"].tolist() == ["exit", "entry"]


def test_missing_signals_decide_nothing() -> None:
    held = RulesState(("A",), 90_000.0, np.array([100.0]), np.array([100.0]), 100_000.0)
    bar = Bar(0, np.array([100.0]), np.array([np.nan]), np.array([0.2]), np.array([-0.9]))
    for rule in ("opposite", "conditions"):
        assert TradingRules(exit_rule=rule).decide(held, bar).orders == ()
    # from_forecast: up above the close, not up below, none when equal.
    s = Signals.from_forecast([101.0, 99.0, 100.0, np.nan], [100.0] * 4, [0.7, 0.3, 0.7, 0.7], [0.5, -0.5, 0.5, 0.5])
    long_ok, short_ok, valid = TradingRules().conditions(s.lstm_up, s.p_up, s.rl_signal)
    assert long_ok.tolist() == [True, False, False, False] and short_ok.tolist() == [False, True, False, False]
    assert valid.tolist() == [True, True, False, False]


def test_buys_never_spend_more_than_the_cash() -> None:
    # 100% allocation: 1,000 shares sized at 100, but bar 1 opens at 110. With 10 bps, 909 shares would cost
    # 909 * 110 * 1.001 = 100,089.99 > 100,000, so 908 are bought (99,979.88).
    rules = TradingRules(allocation=1.0, stop_loss=None, take_profit=None, daily_stop=None)
    bars = ohlc([(100, 100, 100, 100), (110, 111, 109, 110)])
    result = simulate(bars, directions([1, 0]), rules, cost=BpsCost(10), initial_value=INITIAL)
    assert result.orders["shares"].tolist() == [1000.0]
    assert entries(result)["quantity"].tolist() == [908.0]
    assert result.cash[-1] == pytest.approx(INITIAL - 908 * 110 * 1.001) and result.cash[-1] >= 0


# --------------------------------------------------------------------------------------------
# The daily portfolio stop
# --------------------------------------------------------------------------------------------


def daily_stop_case(sessions: Any) -> Any:
    # Two symbols, half the equity each, no per-position stops, no costs, a 2% daily stop.
    #            A: open  close    B: open  close   signals
    # bar 0       100    100         50     50     long both  -> A 500, B 1,000 shares
    # bar 1       100    100         50     50     long       fills at the opens: cash 0; equity 100,000
    # bar 2       100     97         50     49     long       equity 48,500 + 49,000 = 97,500: -2.5% -> halt
    # bar 3        96     96         48.5   48.5   long       flattened at the opens: cash 96,500; halted: no entry
    # bar 4        98     98         49     49     long       (session 1) start 96,500: A 482,500/98=492, B 984
    # bar 5        98     99         49     49.5   none       bought at the opens: cash 96,500 - 48,216 - 48,216 = 68
    # bar 6        99     96.5       49.5   48.2   none       equity 68 + 47,478 + 47,428.8 = 94,974.8: -1.6%, no halt
    opens = np.array([[100, 50], [100, 50], [100, 50], [96, 48.5], [98, 49], [98, 49], [99, 49.5]], dtype=float)
    closes = np.array([[100, 50], [100, 50], [97, 49], [96, 48.5], [98, 49], [99, 49.5], [96.5, 48.2]], dtype=float)
    bars = PriceBars(close=closes, open=opens, symbols=("A", "B"))
    d = np.array([[1, 1]] * 5 + [[0, 0]] * 2)
    rules = TradingRules(allocation=0.5, stop_loss=None, take_profit=None, daily_stop=0.02)
    return simulate(bars, directions(d), rules, sessions=sessions, initial_value=INITIAL)


def test_daily_stop_flattens_halts_and_resets_next_session() -> None:
    result = daily_stop_case([0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(result.values, [INITIAL, INITIAL, 97_500, 96_500, 96_500, 97_484, 94_974.8], rtol=1e-12)
    np.testing.assert_array_equal(result.halted, [False, False, True, True, False, False, False])
    halts = result.events[result.events["event"] == "halt"]
    assert halts["bar"].tolist() == [2]
    flat = exits(result)
    assert flat[["bar", "symbol", "reason", "price"]].values.tolist() == [
        [3, "A", "daily_stop", 96.0],
        [3, "B", "daily_stop", 48.5],
    ]
    # No entries are decided on bars 2 and 3 (halted); the next session's first close decides them again.
    assert sorted(set(result.orders[result.orders["action"] == "entry"]["bar"])) == [0, 4]
    assert entries(result)[entries(result)["bar"] == 5]["quantity"].tolist() == [492.0, 984.0]
    np.testing.assert_array_equal(result.holdings[-1], [492, 984])
    assert result.exit_counts()["daily_stop"] == 2 and result.exit_counts()["halts"] == 1


def test_daily_stop_with_daily_bars_halts_one_bar() -> None:
    # One session per bar (daily bars): the same prices flatten at bar 3's open, but bar 3 is already a new
    # session (its start: bar 2's close, 97,500; 96,500 is -1.0%, no halt), so its close decides entries again,
    # sized on 96,500: A 48,250 / 96 = 502, B 48,250 / 48.5 = 994. At bar 4's opens A costs 502 * 98 = 49,196,
    # which leaves 47,304 for B at 49: 965 shares (a buy never takes cash below zero).
    stamps = pd.date_range("2024-01-01", periods=7, freq="D", tz="UTC")
    result = daily_stop_case(sessions_of(stamps))
    # Bar 6 is a session of its own too: from bar 5's close (19 cash + 502 * 99 + 965 * 49.5 = 97,484.5) to
    # 19 + 502 * 96.5 + 965 * 48.2 = 94,975 is -2.6%, which halts it (the intraday case measured from 96,500).
    np.testing.assert_array_equal(result.halted, [False, False, True, False, False, False, True])
    np.testing.assert_allclose(result.values[-2:], [97_484.5, 94_975.0], rtol=1e-12)
    assert sorted(set(result.orders[result.orders["action"] == "entry"]["bar"])) == [0, 3]
    assert result.orders[result.orders["bar"] == 3]["shares"].tolist() == [502.0, 994.0]
    assert entries(result)[entries(result)["bar"] == 4]["quantity"].tolist() == [502.0, 965.0]


def test_sessions_are_exchange_calendar_days() -> None:
    stamps = pd.DatetimeIndex(["2024-03-04 14:30", "2024-03-04 20:59", "2024-03-05 02:00"], tz="UTC")
    assert len(set(sessions_of(stamps))) == 3 - 1  # UTC days: the 4th twice, then the 5th
    ny = sessions_of(stamps, "America/New_York")
    assert ny[0] == ny[1] == ny[2]  # 02:00 UTC on the 5th is still the 4th in New York
    assert ny[0] == (pd.Timestamp("2024-03-04") - pd.Timestamp("1970-01-01")).days


# --------------------------------------------------------------------------------------------
# Random runs: costs, accounting, no lookahead, carry-over
# --------------------------------------------------------------------------------------------


def random_case(seed: int = 0, n_bars: int = 120, n_symbols: int = 4, ohlcv: bool = True) -> tuple[PriceBars, Signals]:
    frame = synthetic_bars(n_symbols, n_bars, seed=seed, vol=0.02, ohlcv=ohlcv)
    pivot = {c: frame.pivot(index="timestamp", columns="symbol", values=c) for c in ("open", "high", "low", "close")}
    bars = PriceBars(
        close=pivot["close"].to_numpy(),
        open=pivot["open"].to_numpy(),
        high=pivot["high"].to_numpy(),
        low=pivot["low"].to_numpy(),
        timestamps=pivot["close"].index,
        symbols=tuple(pivot["close"].columns),
    )
    rng = np.random.default_rng(seed + 100)
    shape = bars.shape
    p = rng.random(shape)
    p[:5] = np.nan  # a warm-up without signals
    return bars, Signals(rng.random(shape) < 0.5, p, rng.uniform(-1, 1, shape))


ACTIVE = TradingRules(allocation=0.2, stop_loss=0.02, take_profit=0.03, daily_stop=0.01, max_positions=3)


def replay_accounting(result: Any, initial: float) -> None:
    """Cash, holdings and values rebuilt from the events log alone equal what the simulation recorded."""
    fills = result.events[result.events["filled"] & (result.events["event"] != "halt")]
    n_times, n_assets = result.holdings.shape
    flow, held, paid = np.zeros(n_times), np.zeros((n_times, n_assets)), np.zeros(n_times)
    for row in fills.itertuples():
        flow[row.bar] += row.quantity * row.price + row.cost
        held[row.bar, result.symbols.index(row.symbol)] += row.quantity
        paid[row.bar] += row.cost
    cash = initial - np.cumsum(flow)
    holdings = np.cumsum(held, axis=0)
    np.testing.assert_allclose(result.cash, cash, rtol=1e-10, atol=1e-6)
    np.testing.assert_array_equal(result.holdings, holdings)
    np.testing.assert_allclose(result.costs, paid, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.values, cash + (holdings * result.closes).sum(axis=1), rtol=1e-10)
    np.testing.assert_allclose(result.weights.sum(axis=1), 1.0, rtol=1e-12)
    assert (holdings == np.round(holdings)).all()


@pytest.mark.parametrize("timing", ["next_open", "next_close", "same_close"])
def test_accounting_matches_the_events_log(timing: str) -> None:
    bars, signals = random_case(1)
    result = simulate(bars, signals, ACTIVE, cost=BpsCost(5), timing=timing, initial_value=INITIAL)
    counts = result.exit_counts()
    assert counts["stop_loss"] > 0 and counts["take_profit"] > 0 and counts["signal"] > 0  # the case exercises them
    replay_accounting(result, INITIAL)


def test_costs_are_the_cost_models() -> None:
    bars, signals = random_case(2)

    def fills(r: Any) -> pd.DataFrame:
        return r.events[r.events["filled"] & (r.events["event"] != "halt")]

    model = PerShareCost(per_share=0.01, minimum=1.0)
    result = simulate(bars, signals, ACTIVE, cost=model, initial_value=INITIAL)
    f = fills(result)
    assert len(f) > 20
    np.testing.assert_allclose(f["cost"], np.maximum(0.01 * f["quantity"].abs(), 1.0), rtol=1e-12)
    # A spread cost charges half the spread on the volatility at the previous close (known before the fill).
    spread = SpreadCost(k=2.0, window=10)
    result = simulate(bars, signals, ACTIVE, cost=spread, initial_value=INITIAL)
    f = fills(result)
    vol = spread_volatility(bars.close, 10)
    cols = [result.symbols.index(s) for s in f["symbol"]]
    sigma = np.nan_to_num(vol[f["bar"].to_numpy() - 1, cols])
    np.testing.assert_allclose(f["cost"], 1.0 * sigma * (f["quantity"] * f["price"]).abs(), rtol=1e-12)
    assert (f["cost"] > 0).sum() > 10
    replay_accounting(result, INITIAL)
    # A bare function works the same as the model it mirrors.
    by_model = simulate(bars, signals, ACTIVE, cost=BpsCost(7), initial_value=INITIAL)
    by_function = simulate(
        bars, signals, ACTIVE, cost=lambda notional, shares: 0.0007 * notional, initial_value=INITIAL
    )
    np.testing.assert_allclose(by_function.values, by_model.values, rtol=1e-12)
    free = simulate(bars, signals, ACTIVE, cost=NoCost(), initial_value=INITIAL)
    assert free.costs.sum() == 0.0 and free.values[-1] != by_model.values[-1]


@pytest.mark.parametrize("timing", ["next_open", "next_close", "same_close"])
def test_no_lookahead(timing: str) -> None:
    # Perturbing every price and signal after bar t changes no decision made up to t, no fill before t+1 and no
    # recorded row up to t; fills inside bar t+1 may change (they use bar t+1's own prices).
    bars, signals = random_case(3)
    base = simulate(bars, signals, ACTIVE, cost=BpsCost(10), timing=timing, initial_value=INITIAL)
    rng = np.random.default_rng(7)
    for t in (10, 40, 77):
        later = np.arange(bars.shape[0])[:, None] > t
        factor = np.where(later, np.exp(rng.normal(0, 0.05, bars.shape)), 1.0)
        wider = np.where(later, 1.01, 1.0)
        assert bars.open is not None and bars.high is not None and bars.low is not None
        changed = PriceBars(
            close=bars.close * factor,
            open=bars.open * factor,
            high=bars.high * factor * wider,
            low=bars.low * factor / wider,
            timestamps=bars.timestamps,
            symbols=bars.symbols,
        )
        other = Signals(
            np.where(later, ~signals.lstm_up, signals.lstm_up),
            np.where(later, 1 - signals.p_up, signals.p_up),
            np.where(later, -signals.rl_signal, signals.rl_signal),
        )
        run = simulate(changed, other, ACTIVE, cost=BpsCost(10), timing=timing, initial_value=INITIAL)
        pd.testing.assert_frame_equal(
            run.orders[run.orders["bar"] <= t].reset_index(drop=True),
            base.orders[base.orders["bar"] <= t].reset_index(drop=True),
        )
        pd.testing.assert_frame_equal(
            run.events[run.events["bar"] <= t].reset_index(drop=True),
            base.events[base.events["bar"] <= t].reset_index(drop=True),
        )
        np.testing.assert_array_equal(run.values[: t + 1], base.values[: t + 1])
        np.testing.assert_array_equal(run.holdings[: t + 1], base.holdings[: t + 1])
        assert not np.array_equal(run.values[t + 1 :], base.values[t + 1 :])  # the perturbation did something


def test_state_round_trips_and_a_split_run_equals_the_whole() -> None:
    bars, signals = random_case(4, n_bars=100)
    whole = simulate(bars, signals, ACTIVE, cost=BpsCost(10), initial_value=INITIAL)
    k = 60

    def part(rows: slice) -> tuple[PriceBars, Signals]:
        return (
            PriceBars(
                close=bars.close[rows],
                open=bars.open[rows],
                high=bars.high[rows],
                low=bars.low[rows],
                timestamps=bars.timestamps[rows],
                symbols=bars.symbols,
            ),
            Signals(signals.lstm_up[rows], signals.p_up[rows], signals.rl_signal[rows]),
        )

    first = simulate(*part(slice(0, k)), ACTIVE, cost=BpsCost(10), initial_value=INITIAL)
    saved = json.loads(json.dumps(first.final_state.to_dict()))  # what a live loop would persist
    state = RulesState.from_dict(saved)
    assert state.to_dict() == first.final_state.to_dict()
    second = simulate(*part(slice(k, None)), ACTIVE, cost=BpsCost(10), state=state, pending=first.pending)
    np.testing.assert_array_equal(np.concatenate([first.values, second.values]), whole.values)
    np.testing.assert_array_equal(np.concatenate([first.holdings, second.holdings]), whole.holdings)
    with pytest.raises(RulesError, match="format"):
        RulesState.from_dict({"format": "other"})


def test_decide_is_pure() -> None:
    state = RulesState(("A", "B"), 90_000.0, np.array([100.0, 0]), np.array([100.0, np.nan]), 100_000.0, session=3)
    before = copy.deepcopy(state.to_dict())
    bar = bar_of([95.0, 50.0], [-1, 1], session=4)
    one, two = ACTIVE.decide(state, bar), ACTIVE.decide(state, bar)
    assert state.to_dict() == before and one.orders == two.orders and one.state.to_dict() == two.state.to_dict()


def test_trajectory_and_trades_frame() -> None:
    bars, signals = random_case(5, n_bars=60)
    result = simulate(bars, signals, ACTIVE, cost=BpsCost(10), initial_value=INITIAL)
    traj = result.to_trajectory()
    assert isinstance(traj, Trajectory) and len(traj) == 60 and traj.timestamps.tz is None
    assert traj.values[0] == INITIAL and traj.costs[0] == 0.0
    np.testing.assert_array_equal(traj.holdings, result.holdings)
    assert traj.final_info["rules_state"]["symbols"] == list(bars.symbols)
    trades = result.trades_frame("combined")
    assert len(trades) == int((result.events["filled"] & (result.events["event"] != "halt")).sum())
    assert set(trades["reason"]) <= {"signal", "stop_loss", "take_profit", "daily_stop"}
    np.testing.assert_allclose(trades["notional"], trades["quantity"] * trades["price"])


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"up_threshold": 1.0},
        {"allocation": 0.0},
        {"max_positions": 0},
        {"stop_loss": 1.5},
        {"take_profit": -0.1},
        {"daily_stop": 0.0},
        {"exit_rule": "never"},
    ],
)
def test_bad_rules_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(RulesError, match="TradingRules"):
        TradingRules(**kwargs)


def test_bad_inputs_are_refused() -> None:
    assert TradingRules.from_dict(ACTIVE.to_dict()) == ACTIVE
    with pytest.raises(RulesError, match="unknown"):
        TradingRules.from_dict({"stoploss": 0.1})
    with pytest.raises(DataValidationError, match="close"):
        PriceBars(close=np.array([100.0, np.nan]))
    with pytest.raises(DataValidationError, match="p_up"):
        simulate(
            PriceBars(close=np.ones((3, 2))), Signals(np.ones((3, 2), bool), np.ones((3, 1)), np.ones((3, 2))), ACTIVE
        )
    with pytest.raises(EnvConfigError, match="no opens"):
        simulate(PriceBars(close=np.ones(3)), directions([0, 0, 0]), ACTIVE, timing="next_open")
    with pytest.raises(RulesError, match="shape"):
        ACTIVE.decide(RulesState.initial(("A",), 1.0), bar_of([1.0, 2.0], [0, 0]))
