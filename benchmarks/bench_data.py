"""Ingest and load times of every embedded sample, against a plain CSV baseline measured in the same run.

    python benchmarks/bench_data.py [--repeat 5]

Columns: fetch (read the sample from its package), ingest (validate + write Parquet to a fresh
store), re-ingest (same data again: idempotent, nothing written), load (``load_bars`` of every
symbol through DuckDB), and the baseline ``pandas.read_csv`` of the same bars from a CSV file
(with timestamp parsing), with the ratio baseline / load.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from rltrade.data import BarStore, load_bars
from rltrade.data.sources import fetch
from rltrade.data.sources.samples import SAMPLES


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_sample(spec: str, tmp: Path, repeat: int) -> dict[str, object]:
    """Time fetch, fresh ingest, idempotent re-ingest and load of one sample, and the CSV baseline."""
    batches = fetch(spec)
    freq = batches[0].freq
    fetch_s = best_of(lambda: fetch(spec), repeat)
    fresh = iter(range(1_000_000))
    ingest_s = best_of(lambda: BarStore(tmp / f"fresh-{next(fresh)}").ingest(batches, source=spec), repeat)
    store = tmp / "store"
    BarStore(store).ingest(batches, source=spec)
    reingest_s = best_of(lambda: BarStore(store).ingest(batches, source=spec), repeat)
    load_s = best_of(lambda: load_bars(freq=freq, store=store), repeat)
    bars = load_bars(freq=freq, store=store)
    csv = tmp / "bars.csv"
    bars.to_csv(csv, index=False)
    csv_s = best_of(lambda: pd.read_csv(csv, parse_dates=["timestamp"]), repeat)
    return {
        "sample": spec,
        "freq": freq,
        "symbols": bars["symbol"].nunique(),
        "rows": len(bars),
        "fetch s": fetch_s,
        "ingest s": ingest_s,
        "re-ingest s": reingest_s,
        "load s": load_s,
        "csv baseline s": csv_s,
        "csv/load": csv_s / load_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the indices sample warns about zero-volume days
    rows = []
    for name in SAMPLES:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(bench_sample(f"sample:{name}", Path(tmp), args.repeat))
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
