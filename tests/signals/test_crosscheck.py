"""The export backtested in bt agrees with rltrade's backtest of the run (1 bp a day, 0.1 % at the end)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from tests.signals.runs import TrainedRun, next_close_copy, strategy_run

from rltrade.signals import crosscheck, export_signals, export_table


def test_bt_agrees_with_the_runs_backtest_at_next_open_fills(run: TrainedRun, engine: Engine, tmp_path: Path) -> None:
    result = crosscheck(run.run_dir, engine=engine)
    assert result.timing == "next_open" and result.engine.startswith("bt ")
    assert result.max_return_diff < 1e-4 and result.final_rel_diff < 1e-3 and result.passed
    equity = pd.read_csv(run.run_dir / "equity.csv", index_col="timestamp")
    assert result.days == len(equity)  # the run's whole test range, from its first bar
    assert result.final_rltrade == pytest.approx(equity["ppo"].iloc[-1], rel=1e-9)  # the run's own backtest
    assert result.costs_rltrade > 100 and result.costs_engine == pytest.approx(result.costs_rltrade, rel=1e-3)
    assert abs(result.final_rltrade / 1e6 - 1) > 1e-3  # the book moved: agreement is not trivial
    text = result.table()
    assert "final value" in text and "within tolerance" in text
    print(text)  # the measured figures, shown with -s


def test_an_exported_file_gives_the_same_figures(run: TrainedRun, engine: Engine, tmp_path: Path) -> None:
    path = export_signals(run.run_dir, "2011-01-01", "2011-03-31", out=tmp_path / "s.csv", engine=engine)
    from_file = crosscheck(run.run_dir, signals=path, engine=engine)
    from_cache = crosscheck(run.run_dir, engine=engine)
    assert from_file.to_dict() == from_cache.to_dict()


def test_bt_agrees_at_next_close_fills(run: TrainedRun, engine: Engine, tmp_path: Path) -> None:
    result = crosscheck(next_close_copy(run, tmp_path), "2011-02-28", engine=engine)
    assert result.timing == "next_close" and result.end.isoformat() == "2011-02-28"
    assert result.passed, result.table()


def test_a_timing_mismatch_is_caught(run: TrainedRun, engine: Engine) -> None:
    """Signals traded a day late (dated T+1, as if known a session later) fail the check: it can fail."""
    table = export_table(run.run_dir, "2011-01-01", "2011-03-31", engine=engine)
    days = sorted(set(table["date"]))
    late = table.assign(date=table["date"].map(dict(zip(days, [days[0], *days[:-1]], strict=True))))
    late = pd.concat([table[table["date"] == days[0]], late[late["date"] != days[0]]])
    late = late.drop_duplicates(["date", "symbol"], keep="first")
    result = crosscheck(run.run_dir, signals=late, engine=engine)
    assert not result.passed and "OUTSIDE" in result.table()
    print(result.table())


def test_without_bt_the_error_names_the_extra(run: TrainedRun, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from rltrade._optional import MissingDependencyError

    monkeypatch.setitem(sys.modules, "bt", None)  # import bt now fails as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'rltrade\[crosscheck\]'"):
        crosscheck(run.run_dir, "2011-01-31", engine=engine)


@pytest.mark.parametrize("strategy", ["direct_rl", "combined", "ensemble"])
def test_other_strategies_agree_with_their_written_backtests(
    strategy: str, tmp_path_factory: pytest.TempPathFactory, engine: Engine
) -> None:
    """direct_rl trades weights (shorts included); combined and the ensemble trade share counts decided at the close,
    which bt rebalances to as weights at the fill (the table says so): all within the same tolerance."""
    run = strategy_run(tmp_path_factory, strategy)
    result = crosscheck(run.run_dir, engine=engine)
    print(result.table())
    equity = pd.read_csv(run.run_dir / "equity.csv", index_col="timestamp")
    assert result.days == len(equity)
    assert result.final_rltrade == pytest.approx(equity[strategy].iloc[-1], rel=1e-12)  # the run's own backtest
    assert result.costs_rltrade > 0 and result.costs_engine > 0
    assert result.passed, result.table()
    assert result.return_tolerance == 1e-4 and result.final_tolerance == 1e-3
    assert ("share counts" in result.table()) == (strategy != "direct_rl")
