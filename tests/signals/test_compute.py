"""The daily signal job: the backtest's own decisions, from data up to T only, cached idempotently."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from tests.signals.runs import TrainedRun, next_close_copy

from rltrade.backtest.runner import Trajectory
from rltrade.data.adjust import adjust_prices
from rltrade.data.schema import RawBars
from rltrade.data.store import BarStore, load_bars
from rltrade.db import connect
from rltrade.db.signals import SIGNALS
from rltrade.errors import RLTradeError
from rltrade.runs import load_policy
from rltrade.signals import SignalError, compute_range, compute_signals


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(SIGNALS)).scalar_one())


def _backtest(run_dir: Path, store: Path) -> tuple[Trajectory, pd.DataFrame]:
    """The run's backtest trajectory over its test range (rltrade's own path) and the adjusted bars."""
    policy = load_policy(run_dir)
    bars = adjust_prices(load_bars(policy.manifest["symbols"], end="2011-03-31", store=store))
    return policy.trade(bars), bars


def _by_day(rows: pd.DataFrame) -> dict[object, np.ndarray]:
    return {day: part.sort_values("symbol")["weight"].to_numpy() for day, part in rows.groupby("as_of")}


def test_signals_are_the_weights_the_backtest_trades_to_at_the_next_open(run: TrainedRun, engine: Engine) -> None:
    rows = compute_range(run.run_dir, end="2011-03-31", engine=engine)
    traj, bars = _backtest(run.run_dir, run.store)
    equity = pd.read_csv(run.run_dir / "equity.csv", index_col="timestamp")
    np.testing.assert_allclose(traj.values, equity["ppo"].to_numpy(), rtol=1e-9)  # it is the run's backtest
    opens = bars.pivot(index="timestamp", columns="symbol", values="open")
    opens.index = opens.index.tz_convert(None)
    weights = _by_day(rows)
    assert sorted(weights) == [t.date() for t in traj.timestamps]  # one signal per test day
    for k in range(len(traj) - 1):
        # after the fill at the open of T+1: holdings worth h·open, cash unchanged until the close
        held = traj.holdings[k + 1] * opens.loc[traj.timestamps[k + 1], list(traj.symbols)].to_numpy()
        cash = traj.weights[k + 1, -1] * traj.values[k + 1]
        np.testing.assert_allclose(weights[traj.timestamps[k].date()], held / (held.sum() + cash), atol=1e-12)


def test_next_close_signals_are_the_weights_after_each_fill(run: TrainedRun, engine: Engine, tmp_path: Path) -> None:
    copy = next_close_copy(run, tmp_path)
    rows = compute_range(copy, end="2011-03-31", engine=engine)
    traj, _ = _backtest(copy, run.store)
    weights = _by_day(rows)
    for k in range(len(traj) - 1):  # filled and marked at the same close: the weights are the targets
        np.testing.assert_allclose(weights[traj.timestamps[k].date()], traj.weights[k + 1, :-1], atol=1e-12)
    assert not np.allclose(weights[traj.timestamps[1].date()], weights[traj.timestamps[2].date()])


def test_rerunning_a_day_keeps_its_rows(run: TrainedRun, engine: Engine) -> None:
    first = compute_signals(run.run_dir, "2011-02-15", engine=engine)
    assert list(first["symbol"]) == ["AAPL", "IBM", "MSFT"] and _count(engine) == 3
    again = compute_signals(run.run_dir, "2011-02-15", engine=engine)
    pd.testing.assert_frame_equal(first, again)  # created time included: the rows were kept, not rewritten
    assert _count(engine) == 3
    assert (first["last_bar"] == pd.Timestamp("2011-02-15")).all()
    assert 0.0 < first["weight"].sum() < 1.0  # the rest is cash


def test_a_changed_day_is_replaced_not_duplicated(
    run: TrainedRun, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    first = compute_signals(run.run_dir, "2011-02-15", engine=engine)
    with engine.begin() as conn:
        conn.execute(update(SIGNALS).where(SIGNALS.c.symbol == "IBM").values(weight=0.99))
    with caplog.at_level(logging.WARNING, logger="rltrade.signals"):
        again = compute_signals(run.run_dir, "2011-02-15", engine=engine)
    assert "replaced" in caplog.text
    np.testing.assert_array_equal(again["weight"], first["weight"])
    assert _count(engine) == 3


def _append_future_bar(store: Path, day: str) -> None:
    """One bar per symbol after the store's last, with prices far from the last ones."""
    frame = load_bars(None, store=store)
    last = frame[frame["timestamp"] == frame["timestamp"].max()].copy()
    last["timestamp"] = pd.Timestamp(day, tz="UTC")
    for column in ("open", "high", "low", "close", "adj_close"):
        last[column] = last[column] * 1.3
    BarStore(store).ingest([RawBars(last.reset_index(drop=True), "future")], source="sample:stocks")


def test_a_future_bar_changes_nothing_for_an_earlier_as_of_date(
    run: TrainedRun, engine: Engine, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(run.store, store)
    before = compute_signals(run.run_dir, "2013-03-01", engine=engine, store=store)  # the store's last day
    _append_future_bar(store, "2013-03-04")
    other = connect(f"sqlite:///{tmp_path / 'after.db'}")
    after = compute_signals(run.run_dir, "2013-03-01", engine=other, store=store)
    cols = ["symbol", "weight", "score", "last_bar"]
    pd.testing.assert_frame_equal(before[cols], after[cols])
    assert (after["last_bar"] <= pd.Timestamp("2013-03-01")).all()
    # the future bar is there, and read when it is the as-of date: the test can tell them apart
    latest = compute_signals(run.run_dir, engine=other, store=store)
    assert (latest["last_bar"] == pd.Timestamp("2013-03-04")).all()
    assert not np.allclose(latest["weight"], after["weight"])


def test_a_range_equals_its_days_computed_one_by_one(run: TrainedRun, engine: Engine, tmp_path: Path) -> None:
    days = ["2011-01-03", "2011-02-01", "2011-03-31"]  # the first test bar, one inside, the last
    daily = pd.concat([compute_signals(run.run_dir, d, engine=engine) for d in days], ignore_index=True)
    other = connect(f"sqlite:///{tmp_path / 'range.db'}")
    ranged = compute_range(run.run_dir, "2011-01-01", "2011-03-31", engine=other)
    assert ranged["as_of"].nunique() == 62 and len(ranged) == 62 * 3
    picked = ranged[ranged["as_of"].astype(str).isin(days)].reset_index(drop=True)
    cols = ["as_of", "symbol", "weight", "score", "seed", "last_bar"]
    pd.testing.assert_frame_equal(daily[cols], picked[cols])
    # a second call computes nothing new and returns the same rows
    pd.testing.assert_frame_equal(ranged, compute_range(run.run_dir, "2011-01-01", "2011-03-31", engine=other))


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("2011-01-08", r"2011-01-08 is not a trading day .*the trading day before it is 2011-01-07"),
        ("2011-01-17", r"2011-01-17 is not a trading day .*2011-01-14"),  # Martin Luther King Jr. Day
        ("2010-12-31", r"before the test range .* out of sample only"),
        ("2013-03-04", r"after the last bar in the store \(2013-03-01\)"),
        ("2011-02-30", r"'2011-02-30' is not a date"),
    ],
)
def test_bad_dates_are_refused_in_one_line(run: TrainedRun, engine: Engine, date: str, message: str) -> None:
    with pytest.raises(SignalError, match=message) as caught:
        compute_signals(run.run_dir, date, engine=engine)
    assert "\n" not in str(caught.value)
    assert _count(engine) == 0


def _edited_copy(run: TrainedRun, folder: Path, config: dict | None = None, manifest: dict | None = None) -> Path:
    target = folder / "edited"
    shutil.copytree(run.run_dir, target)
    if config:
        data = yaml.safe_load((target / "config.yaml").read_text())
        for section, values in config.items():
            if isinstance(values, dict):
                data[section].update(values)
            else:
                data[section] = values
        (target / "config.yaml").write_text(yaml.safe_dump(data))
    if manifest:
        data = json.loads((target / "manifest.json").read_text())
        (target / "manifest.json").write_text(json.dumps({**data, **manifest}))
    return target


def test_an_ensemble_run_without_its_quarterly_models_is_refused_naming_its_current_pick(
    run: TrainedRun, engine: Engine, tmp_path: Path
) -> None:
    folder = _edited_copy(
        run,
        tmp_path,
        config={"strategy": "ensemble", "env": {"type": "stock_trading", "params": {"hmax": 100}}},
        manifest={"strategy": "ensemble"},
    )
    pd.DataFrame({"quarter": [0, 1], "trade_start": ["2011-01-03", "2011-04-01"], "picked": ["a2c", "ppo"]}).to_csv(
        folder / "quarters.csv", index=False
    )
    with pytest.raises(SignalError, match=r"ensemble run \(its current pick: ppo, trading from 2011-04-01\).*re-run"):
        compute_signals(folder, "2011-02-15", engine=engine)


def test_other_envs_and_missing_runs_are_refused(run: TrainedRun, engine: Engine, tmp_path: Path) -> None:
    folder = _edited_copy(run, tmp_path, config={"env": {"type": "stock_trading", "params": {}}})
    with pytest.raises(SignalError, match=r"stock_trading env: signals .* portfolio-env runs"):
        compute_signals(folder, "2011-02-15", engine=engine)
    with pytest.raises(SignalError, match="does not exist"):
        compute_signals(tmp_path / "nowhere", engine=engine)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RLTradeError, match=r"not a run directory: no manifest\.json"):
        compute_signals(tmp_path / "empty", engine=engine)


def test_update_data_from_a_sample_says_there_is_nothing_new(
    run: TrainedRun, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="rltrade.signals"):
        rows = compute_signals(run.run_dir, "2011-02-15", update_data=True, engine=engine)
    assert "sample:stocks is an embedded sample: it has no new bars to ingest" in caplog.text
    assert len(rows) == 3


def test_update_data_ingests_the_new_bars_of_a_file_source(run: TrainedRun, engine: Engine, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(run.store, store)
    stored = load_bars(None, store=store)
    extra = stored[stored["timestamp"] == stored["timestamp"].max()].copy()
    extra["timestamp"] = pd.Timestamp("2013-03-04", tz="UTC")
    source = pd.concat([stored, extra])
    source["timestamp"] = source["timestamp"].dt.strftime("%Y-%m-%d")
    source.to_csv(tmp_path / "bars.csv", index=False)
    folder = _edited_copy(run, tmp_path, config={"data": {"source": f"csv:{tmp_path / 'bars.csv'}"}})
    before = compute_signals(folder, engine=engine, store=store)
    assert str(before["as_of"].iloc[0]) == "2013-03-01"
    after = compute_signals(folder, update_data=True, engine=engine, store=store)
    assert str(after["as_of"].iloc[0]) == "2013-03-04" and _count(engine) == 6
