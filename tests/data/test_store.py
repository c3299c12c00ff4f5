"""The Parquet/DuckDB store: layout, idempotence, atomicity, fsspec URIs, load_bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from tests.conftest import tree_digest

from rltrade.data import BarStore, RawBars, load_bars
from rltrade.data.sources import fetch
from rltrade.errors import DataValidationError, StoreError, UnknownSymbolError


def _raw(frame: pd.DataFrame, origin: str = "test.csv") -> RawBars:
    frame = frame.copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return RawBars(frame, origin, "1d")


@pytest.fixture(scope="module")
def sp500_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sp500") / "store"
    BarStore(root).ingest(fetch("sample:sp500"), source="sample:sp500")
    return root


def test_sp500_sample_round_trip(sp500_store: Path) -> None:
    bars = load_bars(store=sp500_store)
    assert bars["symbol"].nunique() == 20
    assert bars["timestamp"].min() == pd.Timestamp("1990-01-02", tz="UTC")
    assert bars["timestamp"].max() == pd.Timestamp("2022-12-28", tz="UTC")
    assert str(bars["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert list(bars.columns) == ["symbol", "timestamp", "open", "high", "low", "close", "volume"]
    # sorted by (timestamp, symbol), no duplicates
    key = list(zip(bars["timestamp"], bars["symbol"], strict=True))
    assert key == sorted(key) and len(set(key)) == len(key)
    # close-only: no fabricated open/high/low
    assert bars[["open", "high", "low", "volume"]].isna().all().all()
    assert all(bars.attrs["close_only"].values())
    from skfolio.datasets import load_sp500_dataset

    wide = bars.pivot(index="timestamp", columns="symbol", values="close")
    np.testing.assert_array_equal(wide.to_numpy(), load_sp500_dataset().to_numpy())


def test_layout_is_partitioned_by_frequency_and_symbol(sp500_store: Path) -> None:
    files = sorted(p.relative_to(sp500_store).as_posix() for p in sp500_store.rglob("*.parquet"))
    assert len(files) == 20
    assert files[0] == "freq=1d/symbol=AAPL/bars.parquet"


def test_load_filters_symbols_and_dates(sp500_store: Path) -> None:
    bars = load_bars(["MSFT", "KO"], start="2020-01-02", end="2020-01-03", store=sp500_store)
    assert sorted(bars["symbol"].unique()) == ["KO", "MSFT"]
    assert sorted(bars["timestamp"].dt.strftime("%Y-%m-%d").unique()) == ["2020-01-02", "2020-01-03"]
    assert list(bars["symbol"][:2]) == ["KO", "MSFT"]


def test_unknown_symbol_names_it(sp500_store: Path) -> None:
    with pytest.raises(UnknownSymbolError, match=r"ZZZZ.*available: AAPL"):
        load_bars(["AAPL", "ZZZZ"], store=sp500_store)


def test_missing_frequency_says_what_to_do(sp500_store: Path) -> None:
    with pytest.raises(StoreError, match="no 1h bars; ingest"):
        load_bars(freq="1h", store=sp500_store)


def test_reingest_is_idempotent(sp500_store: Path) -> None:
    before = tree_digest(sp500_store)
    results = BarStore(sp500_store).ingest(fetch("sample:sp500"), source="sample:sp500")
    assert {r.status for r in results} == {"unchanged"}
    assert tree_digest(sp500_store) == before


def test_incremental_ingest_equals_full_ingest(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    full, parts = BarStore(tmp_path / "full"), BarStore(tmp_path / "parts")
    full.ingest([_raw(aapl_ibm_bars)], source="t")
    first = aapl_ibm_bars[aapl_ibm_bars["timestamp"] < "2010-07-01"]
    # the second batch overlaps the first by a month: same values, so no conflict, no duplicates
    second = aapl_ibm_bars[aapl_ibm_bars["timestamp"] >= "2010-06-01"]
    parts.ingest([_raw(first)], source="t")
    results = parts.ingest([_raw(second)], source="t")
    assert {r.status for r in results} == {"updated"}
    a, b = full.load(), parts.load()
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["content_hash"] == b.attrs["content_hash"]
    assert len(b) == len(aapl_ibm_bars)


def test_restated_prices_are_refused_unless_replaced(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    store = BarStore(tmp_path / "s")
    store.ingest([_raw(aapl_ibm_bars)], source="t")
    before = tree_digest(tmp_path / "s")
    restated = aapl_ibm_bars.copy()
    restated.loc[restated["symbol"] == "IBM", ["open", "high", "low", "close"]] *= 0.98  # re-adjusted history
    with pytest.raises(DataValidationError, match=r"IBM \(1d\).*restate stored bars.*--replace"):
        store.ingest([_raw(restated, "restated.csv")], source="t")
    assert tree_digest(tmp_path / "s") == before
    store.ingest([_raw(restated)], source="t", replace=True)
    ibm = store.load(["IBM"])
    np.testing.assert_allclose(ibm["close"], restated.loc[restated["symbol"] == "IBM", "close"])


def test_crash_during_write_leaves_store_unchanged(
    tmp_path: Path, aapl_ibm_bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BarStore(tmp_path / "s")
    store.ingest([_raw(aapl_ibm_bars[aapl_ibm_bars["timestamp"] < "2010-06-01"])], source="t")
    before = tree_digest(tmp_path / "s")
    real_write = pq.write_table
    calls = {"n": 0}

    def crash_on_second(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real_write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pq, "write_table", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        store.ingest([_raw(aapl_ibm_bars)], source="t")
    assert tree_digest(tmp_path / "s") == before  # no temp files, no half-updated partition


@pytest.mark.parametrize("uri", ["memory://rltrade-test-store", "file://{tmp}/uri-store"])
def test_fsspec_uri_store(uri: str, tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    store = BarStore(uri.format(tmp=tmp_path))
    local = BarStore(tmp_path / "local")
    for s in (store, local):
        s.ingest([_raw(aapl_ibm_bars)], source="t")
    assert store.symbols() == ["AAPL", "IBM"]
    pd.testing.assert_frame_equal(store.load(start="2010-03-01"), local.load(start="2010-03-01"))
    assert [i.content_hash for i in store.info()] == [i.content_hash for i in local.info()]
    if uri.startswith("memory"):
        import fsspec

        fsspec.filesystem("memory").rm("/rltrade-test-store", recursive=True)


def test_store_location_from_environment(
    tmp_path: Path, aapl_ibm_bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RLTRADE_STORE", str(tmp_path / "env-store"))
    BarStore().ingest([_raw(aapl_ibm_bars)], source="t")
    assert (tmp_path / "env-store" / "freq=1d" / "symbol=IBM" / "bars.parquet").exists()
    assert len(load_bars(["IBM"])) == 252


def test_missing_sessions_are_reported(tmp_path: Path, aapl_ibm_bars: pd.DataFrame) -> None:
    gappy = aapl_ibm_bars[aapl_ibm_bars["timestamp"] != "2010-03-15"]
    BarStore(tmp_path / "s").ingest([_raw(gappy)], source="t")
    bars = load_bars(store=tmp_path / "s", calendar="XNYS")
    missing = bars.attrs["missing_sessions"]
    assert [d.strftime("%Y-%m-%d") for d in missing["AAPL"]] == ["2010-03-15"]
    assert [d.strftime("%Y-%m-%d") for d in missing["IBM"]] == ["2010-03-15"]
    assert len(bars) == len(gappy)  # reported, never filled
