"""The ensemble's decisions for any day (strategies/ensemble_signals.py) on the session's two-quarter run.

The run (tests/strategies/ensemble_runs.py) trades ``next_close`` fills: the order decided
after T's close fills at T+1's close, so the holdings the backtest shows at T+1 are the targets
of T wherever the cash pays the buys at both prices.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rltrade.config import RunConfig, bar_config, load_config
from rltrade.runs.files import read_manifest
from rltrade.strategies.ensemble import STATE_VERSION
from rltrade.strategies.ensemble_signals import (
    EnsembleSignalError,
    NoQuarterlyModelsError,
    ensemble_targets,
    finished_quarters,
)

SEED = 1


def _open(run: Path) -> tuple[RunConfig, dict[str, Any]]:
    return bar_config(load_config(run / "config.yaml")), read_manifest(run)


def _bars(config: RunConfig, manifest: dict[str, Any], day: dt.date) -> pd.DataFrame:
    """The run's bars up to ``day`` (as the signal job's ``load_until`` reads them)."""
    from rltrade.data.adjust import adjust_prices
    from rltrade.data.store import load_bars

    bars = load_bars(list(manifest["symbols"]), end=day.isoformat(), freq="1d", store=config.data.store)
    return adjust_prices(bars, config.data.prices)


def _stored_days(config: RunConfig, manifest: dict[str, Any], after: dt.date, count: int) -> list[dt.date]:
    """The first ``count`` trading days of the store after ``after``."""
    bars = _bars(config, manifest, after + dt.timedelta(days=3 * count + 10))
    days = sorted({t.date() for t in pd.DatetimeIndex(bars["timestamp"])})
    return [d for d in days if d > after][:count]


@pytest.fixture(scope="module")
def backtest(sequential_run: Path) -> dict[str, Any]:
    """The "ensemble" trajectory of the two quarters (``state/seed_1/q*.npz``), rows chained."""
    parts: dict[str, list[np.ndarray]] = {"timestamps": [], "holdings": [], "values": [], "closes": []}
    for number in (0, 1):
        with np.load(sequential_run / "state" / f"seed_{SEED}" / f"q{number:03d}.npz") as data:
            for field in parts:
                part = data[f"ensemble.{field}"]
                parts[field].append(part if number == 0 else part[1:])  # the boundary bar once
    out: dict[str, Any] = {field: np.concatenate(arrays) for field, arrays in parts.items()}
    out["days"] = [t.date() for t in pd.DatetimeIndex(out["timestamps"])]
    return out


@pytest.fixture(scope="module")
def targets(sequential_run: Path, backtest: dict[str, Any]) -> pd.DataFrame:
    """The targets of every decision day of both quarters, in one call."""
    config, manifest = _open(sequential_run)
    days = backtest["days"][:-1]  # the last bar's close is marked, not decided on
    return ensemble_targets(sequential_run, config, manifest, SEED, _bars(config, manifest, days[-1]), days)


def _rows(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    return frame[frame["as_of"] == day].reset_index(drop=True)


def test_each_quarter_keeps_its_pick_and_decision(sequential_run: Path) -> None:
    config, manifest = _open(sequential_run)
    quarters = pd.read_csv(sequential_run / "quarters.csv")
    for seed in manifest["seeds"]:
        folder = sequential_run / "state" / f"seed_{seed}"
        carried = {"cash": config.env.initial_value, "shares": [0] * len(manifest["symbols"])}
        for number in (0, 1):
            meta = json.loads((folder / f"q{number:03d}.json").read_text())
            row = quarters[(quarters["seed"] == seed) & (quarters["quarter"] == number)].iloc[0]
            decision = meta["decision"]
            assert meta["version"] == STATE_VERSION == 2
            assert decision["model"] == f"q{number:03d}_{row['picked']}.zip"
            model = sequential_run / "models" / f"seed_{seed}" / decision["model"]
            assert model.is_file() and model.stat().st_size > 0
            assert decision["env_threshold"] == pytest.approx(row["turbulence_threshold"])  # ensemble.turbulence on
            assert decision["scaler_data"]["kind"] == "zscore"
            assert decision["start_carry"] == carried  # the account the quarter started from
            carried = meta["carry"]["ensemble"]
        # one model per quarter, no temp file left
        assert sorted(p.name for p in (sequential_run / "models" / f"seed_{seed}").iterdir()) == [
            json.loads((folder / f"q{n:03d}.json").read_text())["decision"]["model"] for n in (0, 1)
        ]


def test_the_targets_are_the_backtests_decisions(
    sequential_run: Path, backtest: dict[str, Any], targets: pd.DataFrame
) -> None:
    """Target shares of T = holdings after T+1's fill, except buys the cash cannot pay in full at T's or T+1's close."""
    from rltrade.envs.costs import kernel_params, trade_cost
    from rltrade.envs.factory import make_cost

    config, manifest = _open(sequential_run)
    assert config.env.timing == "next_close"  # the fill price of T's order is T+1's close
    symbols = list(manifest["symbols"])
    cost = kernel_params(make_cost(config.env.cost))
    assert cost.half_spread == 0.0
    hmax = float(config.env.params["hmax"])
    days = backtest["days"][:-1]
    assert sorted(set(targets["as_of"])) == days and len(targets) == len(days) * len(symbols)
    assert list(targets.columns) == ["as_of", "symbol", "weight", "score", "last_bar"]

    def fee(notional: float, shares: float) -> float:
        return float(trade_cost(cost.rate, cost.per_share, cost.minimum, cost.half_spread, notional, shares, 0.0))

    def paid_in_full(held: np.ndarray, cash: float, action: np.ndarray, price: np.ndarray) -> np.ndarray:
        """The buys the env makes in full at ``price`` (in its order: largest action first)."""
        a = np.clip(action, -1.0, 1.0)
        want = np.trunc(a * hmax)
        for j in np.nonzero(want < 0)[0]:
            q = min(-want[j], held[j])
            cash += q * price[j] - fee(q * price[j], q)
        full = np.zeros(len(a), dtype=bool)
        for j in np.argsort(a, kind="stable")[::-1]:  # the env's order of the buys
            if want[j] <= 0:
                continue
            need = want[j] * price[j] + fee(want[j] * price[j], want[j])
            if need > cash - 1e-6:  # cut by the cash (or too close to call): this buy and every later one
                break
            cash -= need
            full[j] = True
        return full

    compared = cut_days = 0
    for k, day in enumerate(days):
        rows = _rows(targets, day)
        assert list(rows["symbol"]) == symbols
        assert (rows["last_bar"] == pd.Timestamp(backtest["timestamps"][k])).all()
        value, close = backtest["values"][k], backtest["closes"][k]
        exact = rows["weight"].to_numpy() * value / close
        target = np.rint(exact)
        np.testing.assert_allclose(exact, target, atol=1e-6)  # whole shares
        assert (target >= 0).all() and rows["weight"].sum() <= 1.0 + 1e-12  # no cash below zero
        held, after = backtest["holdings"][k], backtest["holdings"][k + 1]
        cash = value - float(held @ close)
        action = rows["score"].to_numpy()
        full_now = paid_in_full(held, cash, action, close)
        full_fill = paid_in_full(held, cash, action, backtest["closes"][k + 1])
        # sells and holds never depend on the cash; buys only when paid in full at both prices
        same = (np.trunc(np.clip(action, -1, 1) * hmax) <= 0) | (full_now & full_fill)
        np.testing.assert_array_equal(target[same], after[same], err_msg=f"{day}")
        compared += int(same.sum())
        cut_days += int(not same.all())
    assert compared >= 0.75 * len(days) * len(symbols) and cut_days <= len(days) // 2, (compared, cut_days)
    # the ensemble does trade: the targets are not just the holdings
    held = backtest["holdings"][:-1]
    target = np.rint(
        targets.pivot(index="as_of", columns="symbol", values="weight")[symbols].to_numpy()
        * backtest["values"][:-1, None]
        / backtest["closes"][:-1]
    )
    assert (target != held).any(axis=1).sum() >= 10


def test_no_lookahead(sequential_run: Path, backtest: dict[str, Any], targets: pd.DataFrame) -> None:
    """A day's targets from bars truncated at that day are the ones of the long call; a later bar changes nothing."""
    config, manifest = _open(sequential_run)
    days = backtest["days"][:-1]
    boundary = finished_quarters(sequential_run, SEED)[1].trade_start  # quarter 1's first decision
    for day in (days[0], days[17], boundary, days[days.index(boundary) + 9], days[-1]):
        bars = _bars(config, manifest, day)
        assert pd.DatetimeIndex(bars["timestamp"]).max().date() == day
        alone = ensemble_targets(sequential_run, config, manifest, SEED, bars, [day])
        pd.testing.assert_frame_equal(alone, _rows(targets, day))
        # a fabricated bar the day after, with other prices, decided on too: the day itself is unchanged
        future = bars[pd.DatetimeIndex(bars["timestamp"]).date == day].copy()
        future["timestamp"] = future["timestamp"] + pd.Timedelta(days=1)
        future["close"] = future["close"] * np.linspace(0.5, 1.5, len(future))
        longer = pd.concat([bars, future], ignore_index=True)
        longer.attrs = dict(bars.attrs)
        both = ensemble_targets(sequential_run, config, manifest, SEED, longer, [day, day + dt.timedelta(days=1)])
        pd.testing.assert_frame_equal(_rows(both, day), _rows(targets, day))
    with pytest.raises(EnsembleSignalError, match="lookahead guard"):
        ensemble_targets(sequential_run, config, manifest, SEED, _bars(config, manifest, days[5]), days[:3])


def test_after_the_last_quarter_the_last_pick_decides(
    sequential_run: Path, backtest: dict[str, Any], targets: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    config, manifest = _open(sequential_run)
    last = finished_quarters(sequential_run, SEED)[-1]
    assert last.trade_end == backtest["days"][-1]
    later = [last.trade_end, *_stored_days(config, manifest, last.trade_end, 20)]  # up to a month after the run
    days = [backtest["days"][-2], *later]
    with caplog.at_level(logging.WARNING, logger="rltrade.strategies.ensemble_signals"):
        out = ensemble_targets(sequential_run, config, manifest, SEED, _bars(config, manifest, days[-1]), days)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"the last pick ({last.picked}, quarter 1" in warnings[0] and "older than a quarter" in warnings[0]
    assert "rltrade run --resume" in warnings[0]
    assert sorted(set(out["as_of"])) == days
    # the pick trades on from its quarter's start: its decisions inside the quarter are unchanged
    pd.testing.assert_frame_equal(_rows(out, days[0]), _rows(targets, days[0]))
    # and a stale day is decided from data up to it alone, the same as in the long call
    alone = ensemble_targets(sequential_run, config, manifest, SEED, _bars(config, manifest, later[5]), [later[5]])
    pd.testing.assert_frame_equal(alone, _rows(out, later[5]))
    assert np.isfinite(out["weight"]).all() and (out["weight"] >= 0).all()


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    return copy


def test_a_run_without_models_is_refused_in_one_line(sequential_run: Path, tmp_path: Path) -> None:
    config, manifest = _open(sequential_run)
    first = finished_quarters(sequential_run, SEED)[0].trade_start
    bars = _bars(config, manifest, first)
    # the model files deleted
    old = _copy(sequential_run, tmp_path / "deleted")
    shutil.rmtree(old / "models")
    with pytest.raises(NoQuarterlyModelsError, match="keeps no quarterly models") as raised:
        ensemble_targets(old, config, manifest, SEED, bars, [first])
    assert "\n" not in str(raised.value) and "re-run it with this version" in str(raised.value)
    # a state file of version 1 (before this change): no decision in the json, no model
    old = _copy(sequential_run, tmp_path / "v1")
    path = old / "state" / f"seed_{SEED}" / "q000.json"
    meta = json.loads(path.read_text())
    (old / "models" / f"seed_{SEED}" / meta.pop("decision")["model"]).unlink()
    meta["version"] = 1
    path.write_text(json.dumps(meta))
    with pytest.raises(NoQuarterlyModelsError, match=r"quarter 0: state version 1.*re-run it with this version"):
        ensemble_targets(old, config, manifest, SEED, bars, [first])
    # quarter 1 keeps its model: its days are decided
    boundary = finished_quarters(old, SEED)[1].trade_start
    out = ensemble_targets(old, config, manifest, SEED, _bars(config, manifest, boundary), [boundary])
    assert len(out) == len(manifest["symbols"])


def test_days_before_the_first_decision_are_refused(sequential_run: Path) -> None:
    config, manifest = _open(sequential_run)
    first = finished_quarters(sequential_run, SEED)[0].trade_start
    before = first - dt.timedelta(days=7)
    with pytest.raises(EnsembleSignalError, match="out of sample only"):
        ensemble_targets(sequential_run, config, manifest, SEED, _bars(config, manifest, before), [before])


# ----------------------------------------------------------------------------------- the env's rule
@pytest.mark.parametrize("timing", ["same_close", "next_close"])
def test_target_shares_is_the_steps_rule(sp500_bars: pd.DataFrame, timing: str) -> None:
    """``StockTradingEnv.target_shares`` gives the shares a step ends with, at the fill prices of that step."""
    from rltrade.envs.stock_trading import StockTradingEnv

    bars = sp500_bars[sp500_bars["symbol"].isin(["AAPL", "KO", "XOM"])]
    bars = bars[(bars["timestamp"] >= "2013-01-01") & (bars["timestamp"] < "2015-01-01")].reset_index(drop=True)
    env = StockTradingEnv(
        bars,
        features=["macd"],
        hmax=50,
        initial_value=15_000.0,  # small: buys are often cut by the cash
        timing=timing,
        turbulence_threshold=8.0,
        turbulence_window=60,
        start="2014-01-01",
    )
    rng = np.random.default_rng(3)
    _, info = env.reset(seed=0)
    cut = storms = steps = 0
    done = False
    while not done:
        action = rng.uniform(-1.0, 1.0, 3) + 0.4  # buying more than selling
        bar = int(info["bar"])
        at_close = env.target_shares(action)
        at_fill = env.target_shares(action, price=env.market.close[bar + (timing == "next_close")])
        held = np.array(info["shares"])
        _, _, terminated, truncated, info = env.step(action)
        np.testing.assert_array_equal(at_fill, info["shares"])
        assert (at_close == np.round(at_close)).all() and (at_close >= 0).all()
        cut += int(not np.array_equal(at_close, info["shares"]))
        storms += int(info["turbulent"])
        if info["turbulent"]:
            np.testing.assert_array_equal(at_close, np.zeros(3))
        else:
            sold = np.trunc(np.clip(action, -1, 1) * 50) <= 0
            np.testing.assert_array_equal(at_close[sold], np.maximum(held + np.trunc(action.clip(-1, 1) * 50), 0)[sold])
        steps += 1
        done = terminated or truncated
    assert storms > 0
    if timing == "same_close":
        assert cut == 0  # the fill price is the decision's
    else:
        assert cut > 0  # the cash at T+1's close cuts some buys the cash at T's close pays, or the other way round
