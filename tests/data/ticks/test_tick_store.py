"""TickStore: layout, exact round trip, metadata, atomic replacement, nothing written on a refusal or a failure."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tests.conftest import tree_digest
from tests.data.ticks.lobster_files import write_lobster

from rltrade.data import BarStore
from rltrade.data.store import StoreWriteError
from rltrade.data.ticks import EVENT_COLUMNS, Events, TickStore, TickValidationError, read_lobster, synthetic_events
from rltrade.errors import StoreError, UnknownSymbolError


@pytest.fixture(scope="module")
def events() -> Events:
    return synthetic_events(seconds=900, seed=2, symbol="SYN", date="2024-01-02")


def same(a: Events, b: Events) -> None:
    assert (a.symbol, a.date, a.tz) == (b.symbol, b.date, b.tz)
    for col in EVENT_COLUMNS:
        x, y = getattr(a, col), getattr(b, col)
        assert x.dtype == y.dtype, col
        np.testing.assert_array_equal(x, y, err_msg=col)


def test_round_trip_layout_and_metadata(tmp_path: Path, events: Events) -> None:
    store = TickStore(tmp_path / "store")
    path = store.ingest(events, source="synthetic")
    assert Path(path) == tmp_path / "store" / "ticks" / "symbol=SYN" / "date=2024-01-02" / "events.parquet"
    same(store.load("SYN", "2024-01-02"), events)
    meta = json.loads(pq.read_schema(path).metadata[b"rltrade"])
    assert meta["tz"] == "America/New_York" and meta["events"] == len(events) and meta["source"] == "synthetic"
    assert (meta["symbol"], meta["date"]) == ("SYN", "2024-01-02")
    assert meta["first"] == "2024-01-02T14:30:00+00:00"
    assert pq.read_schema(path).names == list(EVENT_COLUMNS)
    assert sorted(p.name for p in (tmp_path / "store").rglob("*")) == sorted(
        ["ticks", "symbol=SYN", "date=2024-01-02", "events.parquet"]
    )  # no temporary file left


def test_tz_comes_back_from_the_metadata(tmp_path: Path, events: Events) -> None:
    store = TickStore(tmp_path)
    london = dataclasses.replace(events, tz="Europe/London", symbol="LDN")
    store.ingest(london)
    assert store.load("LDN", "2024-01-02").tz == "Europe/London"


def test_sessions(tmp_path: Path, events: Events) -> None:
    store = TickStore(tmp_path)
    assert store.sessions() == []
    for symbol, day in (("B", "2024-01-03"), ("A", "2024-01-02"), ("B", "2024-01-02"), ("X/Y", "2024-01-02")):
        store.ingest(dataclasses.replace(events, symbol=symbol, date=day))
    assert store.sessions() == [("A", "2024-01-02"), ("B", "2024-01-02"), ("B", "2024-01-03"), ("X/Y", "2024-01-02")]
    assert store.sessions("B") == [("B", "2024-01-02"), ("B", "2024-01-03")]
    assert store.load("X/Y", "2024-01-02").symbol == "X/Y"  # quoted in the path, whole in the data


def test_shares_a_root_with_the_bar_store(tmp_path: Path, events: Events) -> None:
    TickStore(tmp_path).ingest(events)
    assert BarStore(tmp_path).frequencies() == []  # ticks/ is not a bar partition
    assert TickStore(os.fspath(tmp_path)).sessions() == [("SYN", "2024-01-02")]


def test_reingest_replaces_the_session(tmp_path: Path, events: Events) -> None:
    store = TickStore(tmp_path)
    store.ingest(events)
    other = synthetic_events(seconds=300, seed=9, symbol="SYN", date="2024-01-02")
    store.ingest(other)
    same(store.load("SYN", "2024-01-02"), other)
    assert len(list(tmp_path.rglob("*.parquet"))) == 1 and not list(tmp_path.rglob(".*tmp*"))


def test_a_refused_read_or_ingest_leaves_the_store_unchanged(tmp_path: Path, events: Events) -> None:
    root = tmp_path / "store"
    store = TickStore(root)
    store.ingest(events)
    before = tree_digest(root)
    bad_dir = tmp_path / "in"
    bad_dir.mkdir()
    msg = write_lobster(dataclasses.replace(events, symbol="SYN"), bad_dir, gz=True)
    whole = msg.read_bytes()
    msg.write_bytes(whole[: len(whole) - 200])  # truncated: refused while reading
    with pytest.raises(TickValidationError, match="truncated gzip"):
        store.ingest(read_lobster(msg))
    size = events.size.copy()
    size[3] = -1
    with pytest.raises(TickValidationError, match="event 4: non-positive size -1"):
        store.ingest(dataclasses.replace(events, size=size))
    with pytest.raises(TickValidationError, match="not a date"):
        store.ingest(dataclasses.replace(events, date="2024-02-30"))
    assert tree_digest(root) == before
    same(store.load("SYN", "2024-01-02"), events)


def test_a_refused_first_ingest_creates_nothing(tmp_path: Path, events: Events) -> None:
    ts = events.ts.copy()
    ts[5] = ts[4] - 1
    with pytest.raises(TickValidationError, match="time goes backwards"):
        TickStore(tmp_path / "new").ingest(dataclasses.replace(events, ts=ts))
    assert not (tmp_path / "new").exists()


def test_a_failed_write_keeps_the_old_session(tmp_path: Path, events: Events, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TickStore(tmp_path)
    store.ingest(events)
    before = tree_digest(tmp_path)

    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(StoreWriteError, match="No space left on device"):
        store.ingest(synthetic_events(seconds=60, seed=4, symbol="SYN", date="2024-01-02"))
    with pytest.raises(StoreWriteError):
        store.ingest(dataclasses.replace(events, symbol="NEW"))
    monkeypatch.undo()
    assert tree_digest(tmp_path) == before  # no temporary file, no symbol=NEW folder
    same(store.load("SYN", "2024-01-02"), events)


def test_missing_sessions_and_bad_roots(tmp_path: Path, events: Events) -> None:
    store = TickStore(tmp_path)
    with pytest.raises(UnknownSymbolError, match="it has no ticks"):
        store.load("SYN", "2024-01-02")
    store.ingest(events)
    with pytest.raises(StoreError, match=r"no tick session of SYN on 2024-01-05 .* it has 2024-01-02"):
        store.load("SYN", "2024-01-05")
    with pytest.raises(UnknownSymbolError, match="it has ticks of SYN"):
        store.load("ZZZ", "2024-01-02")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        TickStore(tmp_path / "afile")
    broken = Path(store.path("SYN", "2024-01-02"))
    broken.write_bytes(b"not parquet")
    with pytest.raises(StoreError, match="cannot be read as a tick session"):
        store.load("SYN", "2024-01-02")


def test_fsspec_memory_store(events: Events) -> None:
    store = TickStore("memory://tick-store-test")
    path = store.ingest(events)
    assert path.endswith("/ticks/symbol=SYN/date=2024-01-02/events.parquet")
    same(store.load("SYN", "2024-01-02"), events)
    assert store.sessions() == [("SYN", "2024-01-02")]
    store.fs.rm(store.root, recursive=True)
