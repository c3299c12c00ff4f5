"""One gradient-ascent epoch of the direct-reinforcement agent: analytic recursion, a Python loop, autograd.

Task: the Sharpe ratio of ``F_t = tanh(θ·[1, r_t..r_{t−M+1}, F_{t−1}])`` traded with costs
(:mod:`rltrade.agents.direct`) and its gradient in θ, over 20 assets x 10 years of daily bars
(2,520 x 20 returns), lookback M = 8, one θ per asset (and one shared θ). An *epoch* is what
:meth:`DirectRLAgent.fit` does per update: positions, trading returns, Sharpe ratio, the full
gradient, one Adam step; the ``fit`` row times exactly that, the other rows the gradient evaluation
alone (where all of the time goes).

Rows (measured in the same run, on the same data and θ):

- **analytic (numpy)**: :func:`rltrade.agents.direct.sharpe_gradient`, Moody & Saffell's
  recursion vectorised over assets with one Python loop over time;
- **Python loop**: the same maths as scalar Python, a loop over time and, inside it, over assets
  and parameters (the per-step implementation the analytic one replaces);
- **autograd (torch)**: :func:`rltrade.agents.direct.autograd_sharpe_gradient`, PyTorch float64
  on the CPU with 1 thread, backpropagating through the 2,520-step recurrence.

Every row's gradient is compared with the analytic one (max relative difference). Times are the
median of ``--repeats`` epochs after one warm-up epoch (the Python loop runs fewer repeats). The
goal: a ``fit`` epoch under 0.2 s and at least 5x faster than the Python loop.

Data: synthetic GBM closes (:func:`rltrade.testing.synthetic_bars`, fixed seed), or with
``--data sp500`` the embedded sample's 20 US large caps (``rltrade.data.sample("sp500")``), last
10 years.

Run: ``python benchmarks/bench_direct_rl.py [--data synthetic|sp500] [--repeats 20] [--lookback 8]``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from rltrade.agents.direct import DirectRLAgent, autograd_sharpe_gradient, returns_from_close, sharpe_gradient
from rltrade.testing import synthetic_bars

GOAL_SECONDS, GOAL_RATIO = 0.2, 5.0
N_BARS, N_ASSETS = 2520, 20
COST_RATE = 0.001  # 10 bp per unit of turnover, BpsCost(10)


def benchmark_returns(data: str) -> np.ndarray:
    """``[2520, 20]`` percentage returns: synthetic closes, or the last 10 years of the sp500 sample."""
    if data == "sp500":
        from rltrade.data import sample

        bars = sample("sp500")
        close = bars.pivot(index="timestamp", columns="symbol", values="close").dropna().to_numpy()
        return returns_from_close(close[-(N_BARS + 1) :])
    bars = synthetic_bars(N_ASSETS, N_BARS + 1, seed=0, start="2010-01-04", vol=0.018, ohlcv=False)
    close = bars.pivot(index="timestamp", columns="symbol", values="close").to_numpy()
    return returns_from_close(close)


def loop_sharpe_gradient(
    theta: np.ndarray, lags: np.ndarray, returns: np.ndarray, cost_rate: float, initial: np.ndarray
) -> tuple[float, np.ndarray]:
    """:func:`sharpe_gradient` as scalar Python: a loop over time, assets and parameters."""
    n, n_assets, lookback = lags.shape
    k = lookback + 2
    th = np.broadcast_to(theta, (n_assets, k)).tolist()
    lag, ret = lags.tolist(), returns.tolist()
    positions = [[0.0] * n_assets for _ in range(n)]
    previous = [[0.0] * n_assets for _ in range(n)]
    trading = [0.0] * n
    prev = [float(v) for v in initial]
    for t in range(n):
        total = 0.0
        for i in range(n_assets):
            z = th[i][0] + th[i][-1] * prev[i]
            for j in range(lookback):
                z += th[i][1 + j] * lag[t][i][j]
            f = math.tanh(z)
            positions[t][i], previous[t][i] = f, prev[i]
            total += (prev[i] * ret[t][i] - cost_rate * abs(f - prev[i])) / n_assets
            prev[i] = f
        trading[t] = total
    mean = sum(trading) / n
    var = sum((r - mean) ** 2 for r in trading) / n
    square = var + mean * mean
    ds_dr = [(square - mean * r) / (n * var**1.5) for r in trading]
    grad = [[0.0] * k for _ in range(n_assets)]
    d_prev = [[0.0] * k for _ in range(n_assets)]
    for t in range(n):
        for i in range(n_assets):
            f, p = positions[t][i], previous[t][i]
            sign = (f > p) - (f < p)
            slope = 1.0 - f * f
            x = [1.0, *lag[t][i], p]
            d_now = [slope * (x[m] + th[i][-1] * d_prev[i][m]) for m in range(k)]
            dr_df = -cost_rate * sign / n_assets
            dr_dp = (ret[t][i] + cost_rate * sign) / n_assets
            for m in range(k):
                grad[i][m] += ds_dr[t] * (dr_df * d_now[m] + dr_dp * d_prev[i][m])
            d_prev[i] = d_now
    out = np.array(grad)
    if theta.shape[0] == 1:
        out = out.sum(axis=0, keepdims=True)
    return mean / math.sqrt(var), out


def time_epochs(
    gradient: Callable[..., tuple[float, np.ndarray]],
    theta: np.ndarray,
    lags: np.ndarray,
    returns: np.ndarray,
    repeats: int,
) -> tuple[float, np.ndarray]:
    """Median seconds of one Sharpe-and-gradient evaluation at θ after a warm-up one, and the gradient."""
    flat = np.zeros(lags.shape[1])
    _, grad = gradient(theta, lags, returns, COST_RATE, flat)  # warm-up (imports, allocator)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        gradient(theta, lags, returns, COST_RATE, flat)
        times.append(time.perf_counter() - start)
    return statistics.median(times), grad


def time_fit(agent: DirectRLAgent, returns: np.ndarray, epochs: int) -> float:
    """Seconds per epoch of :meth:`DirectRLAgent.fit` (``epochs`` Adam updates, no validation)."""
    start = time.perf_counter()
    agent.fit(returns, epochs=epochs)
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("synthetic", "sp500"), default="synthetic")
    parser.add_argument("--repeats", type=int, default=20, help="timed epochs per row (the Python loop: a quarter)")
    parser.add_argument("--lookback", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    returns = benchmark_returns(args.data)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"data: {args.data}, {returns.shape[0]} bars x {returns.shape[1]} assets of daily percentage returns; "
        f"lookback {args.lookback}, cost rate {COST_RATE}; machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load:.2f}; numpy {np.__version__}, torch {torch.__version__} (1 thread)"
    )
    header = ("theta", "method", "epoch s", "x Python loop", "max rel diff vs analytic")
    lines = []
    verdicts = []
    for shared in (False, True):
        agent = DirectRLAgent(returns.shape[1], lookback=args.lookback, shared=shared, init_scale=0.3, seed=0)
        agent.scale = returns.std(axis=0)
        lags, raw = agent._inputs(returns)
        label = "shared" if shared else "per asset"
        fit_s = time_fit(agent, returns, args.repeats)
        agent.theta = agent.initial_theta()
        analytic_s, analytic = time_epochs(sharpe_gradient, agent.theta, lags, raw, args.repeats)
        loop_s, loop = time_epochs(loop_sharpe_gradient, agent.theta, lags, raw, max(1, args.repeats // 4))
        auto_s, auto = time_epochs(autograd_sharpe_gradient, agent.theta, lags, raw, max(1, args.repeats // 2))
        scale = np.abs(analytic).max()
        for method, seconds, grad in (
            ("analytic (numpy)", analytic_s, analytic),
            ("Python loop", loop_s, loop),
            ("autograd (torch)", auto_s, auto),
        ):
            diff = np.abs(grad - analytic).max() / scale
            lines.append((label, method, f"{seconds:.4f}", f"{loop_s / seconds:.1f}", f"{diff:.1e}"))
        lines.append((label, "DirectRLAgent.fit (analytic + Adam)", f"{fit_s:.4f}", f"{loop_s / fit_s:.1f}", "-"))
        verdicts.append((label, fit_s, loop_s / fit_s))
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        print("  ".join(cells + [c.rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]))
    for label, seconds, ratio in verdicts:
        met = seconds < GOAL_SECONDS and ratio >= GOAL_RATIO
        print(
            f"{label}: fit epoch {seconds * 1000:.1f} ms, {ratio:.1f}x the Python loop's gradient -> goal "
            f"(< {GOAL_SECONDS} s, >= {GOAL_RATIO:.0f}x) {'met' if met else 'not met'}"
        )
    print(
        "epoch s: one evaluation of positions, trading returns, Sharpe ratio and its gradient at a fixed θ (median); "
        "the fit row: a whole training epoch of DirectRLAgent.fit (the same plus its Adam step and bookkeeping), "
        "mean over the run."
    )


if __name__ == "__main__":
    main()
