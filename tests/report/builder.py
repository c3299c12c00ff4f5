"""Build run directories as a training run writes them, out of real S&P 500 prices (skfolio).

:func:`build_run_dir` writes the baselines from real rules on real prices and "ppo" seeds as
perturbed momentum mixtures; :func:`restamp_hourly` turns a run into an intraday one;
:func:`add_backtest` writes a re-backtest folder ``RUN_DIR/backtests/NAME``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

INITIAL = 1_000_000.0
COST_BPS = 10.0


def _simulate(
    targets: np.ndarray | None, returns: np.ndarray, cash0: float = 0.0
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Value path, weights after each step, annualised one-way turnover and cost per step of a rebalancing rule.

    ``targets[t]`` (symbols then cash) is set at the close of day t and held over day t+1; None holds
    the initial equal-weight book untouched (buy and hold).
    """
    n_days, n_assets = returns.shape
    held = np.full(n_assets + 1, (1.0 - cash0) / n_assets)
    held[-1] = cash0
    value = INITIAL * (1.0 - COST_BPS / 1e4 * held[:-1].sum())
    values, after, traded, costs = [value], [held.copy()], [], [INITIAL - value]
    for t in range(1, n_days):
        grown = np.append(held[:-1] * (1.0 + returns[t]), held[-1])
        value *= grown.sum()
        drifted = grown / grown.sum()
        target = drifted if targets is None else targets[t]
        trade = np.abs(target[:-1] - drifted[:-1]).sum() / 2.0
        costs.append(value * COST_BPS / 1e4 * 2.0 * trade)
        value *= 1.0 - COST_BPS / 1e4 * 2.0 * trade
        held = target
        values.append(value)
        after.append(held.copy())
        traded.append(trade)
    return np.array(values), np.array(after), float(np.mean(traded) * 252), np.array(costs)


def _metrics(values: pd.Series, turnover: float | None) -> dict[str, float | None]:
    r = values.pct_change().dropna()
    cumulative = values.iloc[-1] / values.iloc[0] - 1.0
    annual = (1.0 + cumulative) ** (252 / len(r)) - 1.0
    drawdown = float((values / values.cummax() - 1.0).min())
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    return {
        "cumulative_return": float(cumulative),
        "annual_return": float(annual),
        "annual_volatility": float(r.std() * np.sqrt(252)),
        "sharpe": float(r.mean() / r.std() * np.sqrt(252)),
        "sortino": float(r.mean() / downside * np.sqrt(252)),
        "calmar": float(annual / abs(drawdown)),
        "max_drawdown": drawdown,
        "turnover": turnover,
        "hit_rate": float((r > 0).mean()),
        "final_value": float(values.iloc[-1]),
    }


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def build_run_dir(
    root: Path,
    *,
    test: tuple[str, str] = ("2020-01-01", "2021-12-31"),
    train: tuple[str, str] = ("2010-01-04", "2019-12-31"),
    n_seeds: int = 3,
    n_symbols: int = 20,
    weights: bool = True,
    summary: bool = True,
    ensemble: bool = False,
    costs: bool = True,
    trades: bool = False,
) -> Path:
    """Write a realistic run directory from real prices: baselines from real rules, "ppo" seeds as
    perturbed momentum mixtures, optionally the ensemble's agents and its quarter picks, the costs
    paid per step and the trades (whole shares of the real closes)."""
    from skfolio.datasets import load_sp500_dataset, load_sp500_index

    lookback = pd.Timestamp(test[0]) - pd.Timedelta(days=120)
    all_prices = load_sp500_dataset().loc[lookback : test[1]].iloc[:, :n_symbols]
    all_returns = all_prices.pct_change()
    prices = all_prices.loc[test[0] :]
    dates = prices.index
    returns = all_returns.loc[test[0] :].fillna(0.0).to_numpy()
    symbols = list(prices.columns)
    n_days, n_assets = returns.shape

    equal = np.full((n_days, n_assets + 1), 1.0 / n_assets)
    equal[:, -1] = 0.0
    # inverse variance over the trailing 60 days known at each close: a real, causal rule
    variance = all_returns.rolling(60).var().loc[test[0] :].to_numpy()
    inverse = np.append(1.0 / variance, np.zeros((n_days, 1)), axis=1)
    min_var = inverse / inverse.sum(axis=1, keepdims=True)
    momentum = all_prices.pct_change(20).loc[test[0] :].fillna(0.0).to_numpy()
    momentum_z = (momentum - momentum.mean(axis=1, keepdims=True)) / (momentum.std(axis=1, keepdims=True) + 1e-9)

    columns: dict[str, np.ndarray] = {}
    held: dict[str, np.ndarray] = {}
    turnover: dict[str, float | None] = {}
    paid: dict[str, np.ndarray] = {}

    def add(name: str, targets: np.ndarray | None) -> None:
        columns[name], held[name], turnover[name], paid[name] = _simulate(targets, returns)

    def agent(seed: int, tilt: float) -> np.ndarray:
        rng = np.random.default_rng(100 + seed)
        # persistent noise (an exponential average of white noise): a policy's views drift, they do not flicker
        noise = pd.DataFrame(rng.normal(0.0, 3.0, (n_days, n_assets + 1))).ewm(alpha=0.05).mean().to_numpy()
        logits = np.append(tilt * momentum_z, np.full((n_days, 1), -0.5), axis=1) + noise
        mix = 0.4 + 0.2 * rng.random()
        return mix * _softmax(logits) + (1.0 - mix) * equal

    for seed in range(n_seeds):
        add("ppo" if seed == 0 else f"ppo_seed{seed}", agent(seed, 1.0))
    if ensemble:
        add("a2c", agent(50, 0.5))
        add("ddpg", agent(60, 1.5))
        add("ensemble", 0.5 * agent(70, 1.0) + 0.5 * min_var)
    add("buy_and_hold", None)
    add("equal_weight", equal)
    add("min_variance", min_var)
    for seed in range(n_seeds):
        rng = np.random.default_rng(seed)
        add("random" if seed == 0 else f"random_seed{seed}", rng.dirichlet(np.ones(n_assets + 1), n_days))
    sp500 = load_sp500_index().loc[dates, "SP500"].to_numpy()
    columns["index"] = INITIAL * sp500 / sp500[0]
    turnover["index"] = None

    run = root / "run"
    run.mkdir(parents=True)
    stamps = dates.strftime("%Y-%m-%d")
    equity = pd.DataFrame({"timestamp": stamps, **columns})
    equity.to_csv(run / "equity.csv", index=False)
    metrics = {name: _metrics(pd.Series(values), turnover[name]) for name, values in columns.items()}
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2))

    if weights:
        frames = [
            pd.DataFrame(held[name], columns=[*symbols, "cash"]).assign(timestamp=stamps, strategy=name)
            for name in ("ppo", "ppo_seed1", "buy_and_hold", "equal_weight", "min_variance")
            if name in held
        ]
        table = pd.concat(frames, ignore_index=True)
        table[["timestamp", "strategy", *symbols, "cash"]].to_csv(run / "weights.csv", index=False)

    if costs:
        pd.DataFrame({"timestamp": stamps, **paid}).to_csv(run / "costs.csv", index=False)

    if trades:
        frames = []
        closes = prices.ffill().bfill().to_numpy()
        for name in ("ppo", "ppo_seed1", "equal_weight", "buy_and_hold"):
            if name not in held:
                continue
            shares = np.floor(held[name][:, :-1] * columns[name][:, None] / closes)
            change = np.diff(np.vstack([np.zeros(n_assets), shares]), axis=0)
            rows, cols = np.nonzero(change)
            frames.append(
                pd.DataFrame(
                    {
                        "timestamp": stamps[rows],
                        "strategy": name,
                        "symbol": np.asarray(symbols, dtype=object)[cols],
                        "quantity": change[rows, cols],
                        "holding": shares[rows, cols],
                        "price": closes[rows, cols],
                        "notional": change[rows, cols] * closes[rows, cols],
                    }
                )
            )
        pd.concat(frames, ignore_index=True).to_csv(run / "trades.csv", index=False)

    if summary and n_seeds > 1:
        entries = []
        finals = {}
        for base in ("ppo", "random"):
            names = [base] + [f"{base}_seed{s}" for s in range(1, n_seeds)]
            table = pd.DataFrame([metrics[n] for n in names]).astype(float)
            finals[base] = table["final_value"].to_numpy()
            mean, std = table.mean(), table.std(ddof=1)
            half = stats.t.ppf(0.975, n_seeds - 1) * std["sharpe"] / np.sqrt(n_seeds)
            entries.append(
                {
                    "name": base,
                    "n_seeds": n_seeds,
                    "mean": mean.to_dict(),
                    "std": std.to_dict(),
                    "sharpe_ci": [mean["sharpe"] - half, mean["sharpe"] + half],
                    "psr": float(stats.norm.cdf(mean["sharpe"] * np.sqrt(n_days / 252))),
                }
            )
        welch = stats.ttest_ind(finals["ppo"], finals["random"], equal_var=False, alternative="greater")
        document = {
            "strategies": entries,
            "welch": {
                "t": float(welch.statistic),
                "p": float(welch.pvalue),
                "alternative": "greater",
                "statistic": "final_value",
                "vs": "random",
            },
            "confidence": 0.95,
        }
        (run / "summary.json").write_text(json.dumps(document, indent=2))

    if ensemble:
        curves = pd.DataFrame(columns, index=dates)
        rows = []
        for quarter in pd.period_range(dates[0], dates[-1], freq="Q")[1:]:
            trade = dates[(dates >= quarter.start_time) & (dates <= quarter.end_time)]
            val = dates[(dates >= (quarter - 1).start_time) & (dates <= (quarter - 1).end_time)]
            daily = curves.loc[val, ["a2c", "ddpg", "ppo"]].pct_change().dropna()
            sharpe = daily.mean() / daily.std() * np.sqrt(252)
            rows.append(
                {
                    "quarter": str(quarter),
                    "train_start": train[0],
                    "train_end": (val[0] - pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
                    "val_start": val[0].strftime("%Y-%m-%d"),
                    "val_end": val[-1].strftime("%Y-%m-%d"),
                    "trade_start": trade[0].strftime("%Y-%m-%d"),
                    "trade_end": trade[-1].strftime("%Y-%m-%d"),
                    "picked": str(sharpe.idxmax()),
                    "turbulence_threshold": float(
                        (all_returns.loc[: val[-1]].tail(250) ** 2).sum(axis=1).quantile(0.99) * 1e4
                    ),
                    **{f"sharpe_{name}": float(value) for name, value in sharpe.items()},
                }
            )
        pd.DataFrame(rows).to_csv(run / "quarters.csv", index=False)

    manifest = {
        "name": "ppo-portfolio-sp500",
        "created": "2024-05-01T14:03:27+00:00",
        "run_id": "20240501-140327-3f9c2a",
        "algorithm": "PPO",
        "env": "portfolio",
        "seeds": list(range(n_seeds)),
        "train": {"start": train[0], "end": train[1]},
        "test": {"start": dates[0].strftime("%Y-%m-%d"), "end": dates[-1].strftime("%Y-%m-%d")},
        "symbols": symbols,
        "dataset_hash": "9f2c4e7a1b3d5f60718293a4b5c6d7e8f9012345",
        "git_commit": "8f092e1c0ffee1234567890abcdef12345678901",
        "packages": {"rltrade": "0.1.0", "stable-baselines3": "2.3.2", "torch": "2.3.1"},
        "timing": "next_close",
        "cost": f"BpsCost(bps={COST_BPS})",
        "wall_time_s": 5025.4,
    }
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (run / "config.yaml").write_text(
        "name: ppo-portfolio-sp500\n"
        "data:\n  source: sample:sp500\n  symbols: all\n"
        f"split:\n  train: [{train[0]}, {train[1]}]\n  test: [{test[0]}, {test[1]}]\n"
        "env:\n  kind: portfolio\n  cost: {bps: 10}\n  timing: next_close\n  reward: log_return\n"
        "agent:\n  algorithm: PPO\n  total_timesteps: 200000\n  learning_rate: 3.0e-4\n"
        f"seeds: {list(range(n_seeds))}\n"
        'note: "<b>escaped</b> & kept verbatim"\n'
    )
    return run


def restamp_hourly(run: Path, bars_per_session: int = 7) -> list[str]:
    """Give a run's bars intraday timestamps: ``bars_per_session`` hourly bars (from 14:30 UTC) per weekday.

    Every CSV of the run (equity, weights, costs, trades) keeps its rows and values; the n-th
    distinct timestamp becomes the n-th hourly bar from 2024-01-02 14:30. The manifest's test range
    and annualisation follow. Returns the new stamps (ISO, ``YYYY-MM-DD HH:MM:SS``).
    """
    dates = pd.read_csv(run / "equity.csv")["timestamp"].tolist()
    days = pd.bdate_range("2024-01-02", periods=len(dates) // bars_per_session + 1)
    hours = [day + pd.Timedelta(hours=14, minutes=30 + 60 * h) for day in days for h in range(bars_per_session)]
    stamps = [stamp.strftime("%Y-%m-%d %H:%M:%S") for stamp in hours[: len(dates)]]
    mapping = dict(zip(dates, stamps, strict=True))
    for name in ("equity.csv", "weights.csv", "costs.csv", "trades.csv"):
        if (run / name).exists():
            frame = pd.read_csv(run / name)
            frame["timestamp"] = frame["timestamp"].map(mapping)
            frame.to_csv(run / name, index=False)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["test"] = {"start": stamps[0], "end": stamps[-1]}
    manifest["annualization"] = {
        "periods_per_year": 252 * bars_per_session,
        "basis": f"1h bars, exchange market: {bars_per_session} bars a session × 252 sessions = "
        f"{252 * bars_per_session:,} a year",
    }
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return stamps


def add_backtest(run: Path, name: str, start: str, end: str, basis: str = "daily bars: 252 a year") -> Path:
    """Write ``run/backtests/NAME`` as a re-backtest over ``start``..``end`` writes it.

    The folder holds the run's rows in that range (equity, weights, costs, trades; the equity
    rebased to the initial capital), their metrics and a ``backtest.json``; no config or manifest.
    """
    folder = run / "backtests" / name
    folder.mkdir(parents=True)
    equity = pd.read_csv(run / "equity.csv")
    keep = (equity["timestamp"] >= start) & (equity["timestamp"] <= end)
    equity = equity[keep].reset_index(drop=True)
    values = equity.drop(columns="timestamp")
    equity = pd.concat([equity[["timestamp"]], INITIAL * values / values.iloc[0]], axis=1)
    equity.to_csv(folder / "equity.csv", index=False)
    for file in ("weights.csv", "costs.csv", "trades.csv"):
        if (run / file).exists():
            frame = pd.read_csv(run / file)
            frame[(frame["timestamp"] >= start) & (frame["timestamp"] <= end)].to_csv(folder / file, index=False)
    metrics = {column: _metrics(equity[column], None) for column in equity.columns[1:]}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    document = {
        "format": 1,
        "run": "../..",
        "test": {"start": start, "end": end},
        "first_bar": str(equity["timestamp"].iloc[0]),
        "last_bar": str(equity["timestamp"].iloc[-1]),
        "annualization": {"periods_per_year": 252, "basis": basis},
        "created": "2024-06-01T09:00:00+00:00",
    }
    (folder / "backtest.json").write_text(json.dumps(document, indent=2))
    return folder
