"""The export: one row per symbol-day dated as of T, the cache's values, as CSV and Parquet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy.engine import Engine
from tests.signals.runs import SYMBOLS, TrainedRun

from rltrade.data.store import load_bars
from rltrade.db.signals import read_signals
from rltrade.signals import SignalError, export_signals, export_table, read_export


def _trading_days(store: Path, start: str, end: str) -> list[dt.date]:
    bars = load_bars(SYMBOLS, start=start, end=end, store=store)
    return sorted({t.date() for t in bars["timestamp"]})


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_export_holds_the_cached_signals(run: TrainedRun, engine: Engine, tmp_path: Path, fmt: str) -> None:
    path = export_signals(run.run_dir, "2011-02-01", "2011-02-28", format=fmt, out=tmp_path / f"s.{fmt}", engine=engine)
    raw = pd.read_csv(path) if fmt == "csv" else pq.read_table(path).to_pandas()
    assert list(raw.columns) == ["date", "symbol", "signal", "weight"]
    cached = read_signals(engine, path_run_id(run), dt.date(2011, 2, 1), dt.date(2011, 2, 28))
    days = _trading_days(run.store, "2011-02-01", "2011-02-28")
    assert len(raw) == len(days) * len(SYMBOLS) == len(cached)  # every symbol-day, once
    table = read_export(path)
    assert sorted(set(table["date"])) == days  # dated as of T: the trading days of the range themselves
    merged = table.merge(
        cached.rename(columns={"as_of": "date"}), on=["date", "symbol"], how="outer", validate="one_to_one"
    )
    assert not merged.isna().any().any()
    # exact: the CSV is written with repr precision, Parquet as float64
    assert (merged["signal"] == merged["score"]).all() and (merged["weight_x"] == merged["weight_y"]).all()
    if fmt == "parquet":
        assert str(pq.read_schema(path).field("date").type) == "date32[day]"
    else:
        assert raw["date"].iloc[0] == "2011-02-01"


def path_run_id(run: TrainedRun) -> str:
    import json

    return str(json.loads((run.run_dir / "manifest.json").read_text())["run_id"])


def test_the_export_computes_only_the_missing_days(run: TrainedRun, engine: Engine) -> None:
    from rltrade.signals import compute_signals

    kept = compute_signals(run.run_dir, "2011-03-01", engine=engine)
    table = export_table(run.run_dir, "2011-02-28", "2011-03-02", engine=engine)
    assert [str(d) for d in sorted(set(table["date"]))] == ["2011-02-28", "2011-03-01", "2011-03-02"]
    again = read_signals(engine, path_run_id(run), dt.date(2011, 3, 1), dt.date(2011, 3, 1))
    pd.testing.assert_frame_equal(kept, again)  # the cached day was left as it was (same created time)


def test_default_range_and_bad_requests(run: TrainedRun, engine: Engine, tmp_path: Path) -> None:
    table = export_table(run.run_dir, end="2011-01-10", engine=engine)
    assert str(table["date"].iloc[0]) == "2011-01-03"  # the test start (2011-01-01) is a holiday
    with pytest.raises(SignalError, match="--format 'xls'"):
        export_signals(run.run_dir, format="xls", engine=engine)
    with pytest.raises(SignalError, match="before the test range"):
        export_table(run.run_dir, "2010-06-01", "2011-01-10", engine=engine)
    with pytest.raises(SignalError, match="after the last bar in the store"):
        export_table(run.run_dir, "2011-01-03", "2014-01-10", engine=engine)
    (tmp_path / "bad.csv").write_text("day,symbol\n2011-01-03,AAPL\n")
    with pytest.raises(SignalError, match="lacks column"):
        read_export(tmp_path / "bad.csv")
