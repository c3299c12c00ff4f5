"""Training and prediction throughput of seed 002's LSTM regressor and 1-D CNN classifier (samples/s).

Task: ``fit(bars, train_end, val_end)`` with the default settings (window 30, LSTM hidden 32 /
CNN 16 channels, at most 10 epochs, patience 3, batch 256) on 20 symbols x 10 years of daily
bars, then ``predict`` on all of them, once with 1 and once with 2 torch threads.

Columns:

- **train samples/s**: training samples x epochs run / seconds of ``fit`` (everything: inputs,
  scalers, epochs, the validation loss after each epoch, early stopping);
- **fit s**, **epochs** (run / kept): how long a whole fit takes, and where early stopping ended;
- **predict windows/s**: windows scored per second by ``predict`` (inputs included);
- **out of sample**: the test part's scores (LSTM: RMSE / naive RMSE, directional accuracy vs
  always up; CNN: accuracy vs majority class, AUC). On random walks nothing is learnable, so
  these should sit at the references (ratio ≈ 1, accuracy ≈ 50%): a check against leaks.

Split: the first 70% of the timestamps train, the next 15% validate, the last 15% test.

Data: synthetic GBM OHLCV bars (:func:`rltrade.testing.synthetic_bars`, fixed seed), 20 symbols x
2,520 business days; or with ``--data stocks`` the embedded sample's 4 US stocks (AAPL, GOOG, IBM,
MSFT, 2000-2013, real OHLCV). The goal: both models fitted in well under a minute on 2 cores, so a
whole run (both models and a direct-RL agent) fits in a few minutes.

Run: ``python benchmarks/bench_predictors.py [--data synthetic|stocks] [--threads 1 2]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd
import torch

from rltrade.agents.predictors import CNNClassifier, LSTMRegressor
from rltrade.testing import synthetic_bars

N_SYMBOLS, N_BARS = 20, 2520
GOAL_SECONDS = 60.0  # both fits together


def benchmark_bars(data: str) -> pd.DataFrame:
    if data == "stocks":
        from rltrade.data import sample

        return sample("stocks")
    return synthetic_bars(N_SYMBOLS, N_BARS, seed=0, start="2010-01-04", vol=0.018)


def boundaries(bars: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """Last training bar, last validation bar, first test bar (70 / 15 / 15% of the timestamps)."""
    stamps = np.sort(bars["timestamp"].unique())
    n = len(stamps)
    return (
        pd.Timestamp(stamps[int(0.7 * n)]),
        pd.Timestamp(stamps[int(0.85 * n)]),
        pd.Timestamp(stamps[int(0.85 * n) + 1]),
    )


def scores_text(model: LSTMRegressor | CNNClassifier, bars: pd.DataFrame, test_start: pd.Timestamp) -> str:
    s = model.evaluate(bars, start=test_start)
    if isinstance(model, LSTMRegressor):
        return (
            f"RMSE/naive {s['rmse_ratio']:.3f}, direction {s['directional_accuracy']:.1%} "
            f"(always up {s['always_up_accuracy']:.1%})"
        )
    return f"accuracy {s['accuracy']:.1%} (majority {s['majority_accuracy']:.1%}), AUC {s['auc']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("synthetic", "stocks"), default="synthetic")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    bars = benchmark_bars(args.data)
    train_end, val_end, test_start = boundaries(bars)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"data: {args.data}, {bars['symbol'].nunique()} symbols x {bars['timestamp'].nunique()} bars; train to "
        f"{train_end.date()}, validate to {val_end.date()}, test from {test_start.date()}; machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load:.2f}; "
        f"torch {torch.__version__}"
    )
    header = (
        "model",
        "threads",
        "train samples",
        "train samples/s",
        "fit s",
        "epochs run/kept",
        "predict windows/s",
        "out of sample",
    )
    rows = []
    total_fit: dict[int, float] = {}
    for threads in args.threads:
        for model in (LSTMRegressor(threads=threads), CNNClassifier(threads=threads)):
            start = time.perf_counter()
            history = model.fit(bars, train_end, val_end)
            fit_s = time.perf_counter() - start
            total_fit[threads] = total_fit.get(threads, 0.0) + fit_s
            epochs = len(history.train_loss)
            start = time.perf_counter()
            n_windows = len(model.predict(bars))
            predict_s = time.perf_counter() - start
            rows.append(
                (
                    model.kind,
                    str(threads),
                    f"{history.n_train:,}",
                    f"{history.n_train * epochs / fit_s:,.0f}",
                    f"{fit_s:.1f}",
                    f"{epochs}/{history.best_epoch + 1}",
                    f"{n_windows / predict_s:,.0f}",
                    scores_text(model, bars, test_start),
                )
            )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1], strict=True))]
        print("  ".join([*cells, row[-1]]))
    for threads, seconds in total_fit.items():
        verdict = "met" if seconds < GOAL_SECONDS else "not met"
        print(f"{threads} thread(s): both fits {seconds:.1f} s -> goal (< {GOAL_SECONDS:.0f} s) {verdict}")


if __name__ == "__main__":
    main()
