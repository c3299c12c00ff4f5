"""The HTML run report, rendered from run directories built out of real S&P 500 prices (skfolio)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rltrade.errors import RLTradeError
from rltrade.report import RunFiles, render_report, write_report

INITIAL = 1_000_000.0
COST_BPS = 10.0


# --------------------------------------------------------------------------------------------
# Fixture builder: a run directory as a training run writes it


def _simulate(
    targets: np.ndarray | None, returns: np.ndarray, cash0: float = 0.0
) -> tuple[np.ndarray, np.ndarray, float]:
    """Value path, weights after each step and annualised one-way turnover of a rebalancing rule.

    ``targets[t]`` (symbols then cash) is set at the close of day t and held over day t+1; None holds
    the initial equal-weight book untouched (buy and hold).
    """
    n_days, n_assets = returns.shape
    held = np.full(n_assets + 1, (1.0 - cash0) / n_assets)
    held[-1] = cash0
    value = INITIAL * (1.0 - COST_BPS / 1e4 * held[:-1].sum())
    values, after, traded = [value], [held.copy()], []
    for t in range(1, n_days):
        grown = np.append(held[:-1] * (1.0 + returns[t]), held[-1])
        value *= grown.sum()
        drifted = grown / grown.sum()
        target = drifted if targets is None else targets[t]
        trade = np.abs(target[:-1] - drifted[:-1]).sum() / 2.0
        value *= 1.0 - COST_BPS / 1e4 * 2.0 * trade
        held = target
        values.append(value)
        after.append(held.copy())
        traded.append(trade)
    return np.array(values), np.array(after), float(np.mean(traded) * 252)


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
) -> Path:
    """Write a realistic run directory from real prices: baselines from real rules, "ppo" seeds as
    perturbed momentum mixtures, optionally the ensemble's agents and its quarter picks."""
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

    def add(name: str, targets: np.ndarray | None) -> None:
        columns[name], held[name], turnover[name] = _simulate(targets, returns)

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


# --------------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run_dir(tmp_path_factory.mktemp("full"), ensemble=True)


@pytest.fixture(scope="module")
def full_html(full_run: Path) -> str:
    return write_report(full_run).read_text(encoding="utf-8")


def test_report_is_written_atomically_next_to_the_run(full_run: Path, full_html: str) -> None:
    assert (full_run / "report.html").is_file()
    leftovers = sorted(p.name for p in full_run.iterdir())
    assert leftovers == sorted(
        [
            "config.yaml",
            "equity.csv",
            "manifest.json",
            "metrics.json",
            "quarters.csv",
            "report.html",
            "summary.json",
            "weights.csv",
        ]
    )
    assert full_html.startswith("<!DOCTYPE html>")


def test_failed_write_leaves_previous_report_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, weights=False, summary=False)
    target = run / "report.html"
    target.write_text("previous")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(run)
    assert target.read_text() == "previous"
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_every_strategy_is_named(full_run: Path, full_html: str) -> None:
    columns = pd.read_csv(full_run / "equity.csv").columns[1:]
    assert len(columns) == 13  # 3 ppo seeds, the ensemble's 3 columns, 3 baselines, 3 random seeds, index
    for column in columns:
        assert f"<td>{column}</td>" in full_html or f"</span>{column}</td>" in full_html, column


def test_metric_values_are_formatted(full_run: Path, full_html: str) -> None:
    metrics = json.loads((full_run / "metrics.json").read_text())
    ppo = metrics["ppo"]
    row = re.search(r'<tr class="agent">.*?</span>ppo</td>(.*?)</tr>', full_html, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num[^"]*">([^<]*)</td>', row.group(1))
    assert cells == [
        f"{ppo['cumulative_return'] * 100:.1f}%",
        f"{ppo['annual_return'] * 100:.1f}%",
        f"{ppo['annual_volatility'] * 100:.1f}%",
        f"{ppo['sharpe']:.2f}",
        f"{ppo['sortino']:.2f}",
        f"{ppo['calmar']:.2f}",
        f"{ppo['max_drawdown'] * 100:.1f}%",
        f"{ppo['turnover']:,.2f}x",
        f"{ppo['hit_rate'] * 100:.1f}%",
        f"{ppo['final_value']:,.0f}",
    ]
    assert "," in cells[-1]  # thousands separator on a value near one million
    # the index has no turnover: a dash, not "nan"
    index_row = re.search(r"</span>index</td>(.*?)</tr>", full_html, re.S)
    assert index_row is not None and '<td class="num">—</td>' in index_row.group(1)


def test_best_value_per_column_is_bold(full_run: Path, full_html: str) -> None:
    metrics = json.loads((full_run / "metrics.json").read_text())
    best_sharpe = max(m["sharpe"] for m in metrics.values())
    best_drawdown = max(m["max_drawdown"] for m in metrics.values())  # negative: nearest zero is best
    assert f'<td class="num best">{best_sharpe:.2f}</td>' in full_html
    assert f'<td class="num best">{best_drawdown * 100:.1f}%</td>' in full_html
    table = full_html.split('<table class="metrics">')[1].split("</table>")[0]
    assert table.count("num best") >= 10  # one per column (ties may add more)


def test_agents_come_first_and_highlighted(full_html: str) -> None:
    table = full_html.split('<table class="metrics">')[1].split("</table>")[0]
    names = re.findall(r"</span>([a-z0-9_]+)</td>", table)
    assert names[:6] == ["ppo", "ppo_seed1", "ppo_seed2", "a2c", "ddpg", "ensemble"]
    assert names[6:] == [
        "buy_and_hold",
        "equal_weight",
        "min_variance",
        "random",
        "random_seed1",
        "random_seed2",
        "index",
    ]
    assert table.count('<tr class="agent') == 6


def test_page_is_self_contained(full_html: str) -> None:
    from plotly.offline import get_plotlyjs

    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", full_html, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", full_html.split("<script")[0], re.I)
    plotly_js = get_plotlyjs()
    assert full_html.count(plotly_js[:5000]) == 1
    assert full_html.count(plotly_js[-5000:]) == 1
    assert len(full_html) < len(plotly_js) + 2_000_000


def test_sections_in_order(full_html: str) -> None:
    markers = [
        "<h1>ppo-portfolio-sp500</h1>",
        "How to read this",
        '<table class="metrics">',
        "Results over 3 seeds",
        'id="equity-plot"',
        'id="drawdown-plot"',
        'id="weights-plot"',
        'id="quarters-plot"',
        "Config (config.yaml)",
        "Manifest (manifest.json)",
    ]
    positions = [full_html.index(m) for m in markers]
    assert positions == sorted(positions)


def test_header_and_how_to_read(full_html: str) -> None:
    assert "2010-01-04 → 2019-12-31" in full_html  # train
    assert "2020-01-02 → 2021-12-31" in full_html  # test, from the manifest
    assert "out-of-sample test period only" in full_html
    assert "√252 from daily returns" in full_html
    assert "BpsCost(bps=10.0)" in full_html and "next_close" in full_html
    assert ">9f2c4e7a1b<" in full_html and ">8f092e1c<" in full_html  # short hashes
    assert "1 h 24 min" in full_html
    assert "<dd>3 (0–2)</dd>" in full_html  # seeds


def test_config_is_shown_verbatim_and_escaped(full_html: str) -> None:
    assert "&lt;b&gt;escaped&lt;/b&gt; &amp; kept verbatim" in full_html
    assert "<b>escaped</b>" not in full_html
    assert "total_timesteps: 200000" in full_html


def test_seeds_table_and_welch_sentence(full_run: Path, full_html: str) -> None:
    summary = json.loads((full_run / "summary.json").read_text())
    ppo = summary["strategies"][0]
    seeds = full_html.split('<table class="seeds">')[1].split("</table>")[0]
    assert f'{ppo["mean"]["sharpe"]:.2f} <span class="muted">± {ppo["std"]["sharpe"]:.2f}</span>' in seeds
    assert f"[{ppo['sharpe_ci'][0]:.2f}, {ppo['sharpe_ci'][1]:.2f}]" in seeds
    assert f"{ppo['psr']:.2f}" in seeds
    p = summary["welch"]["p"]
    assert f"p = {p:.3g}" in full_html
    assert "mean ppo &gt; mean random" in full_html


def test_quarters_table_and_plot(full_run: Path, full_html: str) -> None:
    quarters = pd.read_csv(full_run / "quarters.csv")
    table = full_html.split('<table class="quarters">')[1].split("</table>")[0]
    for quarter, picked in zip(quarters["quarter"], quarters["picked"], strict=True):
        assert re.search(rf"<td>{quarter}</td>.*?{picked}</span>", table, re.S)
    assert "Picks per quarter" in full_html


def test_weights_group_small_symbols_into_other(full_html: str) -> None:
    weights_div = full_html.split('id="weights-plot"')[1].split("</script>")[0]
    assert '"name":"other"' in weights_div and '"name":"cash"' in weights_div
    assert "9 smallest positions" in full_html  # 20 symbols, 11 shown
    assert '"label":"ppo"' in weights_div and '"label":"min_variance"' in weights_div


def test_works_without_optional_files(tmp_path: Path) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, weights=False, summary=False)
    manifest = json.loads((run / "manifest.json").read_text())
    for key in ("git_commit", "packages", "wall_time_s", "seeds", "created", "dataset_hash", "test"):
        manifest.pop(key)
    (run / "manifest.json").write_text(json.dumps(manifest))
    page = write_report(run, tmp_path / "out" / "page.html").read_text(encoding="utf-8")
    assert not (run / "report.html").exists()
    assert 'id="equity-plot"' in page and 'id="drawdown-plot"' in page
    for absent in ("Results over", 'id="weights-plot"', "Picks per quarter", "Git commit"):
        assert absent not in page
    assert "2020-01-02 → 2021-12-31" in page  # the test period falls back to the equity dates


def test_any_column_set_and_an_empty_manifest(tmp_path: Path) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, weights=False, summary=False, ensemble=True)
    equity = pd.read_csv(run / "equity.csv")[["timestamp", "ensemble", "a2c", "ddpg", "equal_weight"]]
    equity.to_csv(run / "equity.csv", index=False)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({k: metrics[k] for k in equity.columns[1:]}))
    (run / "manifest.json").write_text("{}")
    page = write_report(run).read_text(encoding="utf-8")
    table = page.split('<table class="metrics">')[1].split("</table>")[0]
    assert re.findall(r"</span>([a-z0-9_]+)</td>", table) == ["ensemble", "a2c", "ddpg", "equal_weight"]
    assert "<h1>run</h1>" in page  # the directory name stands in for the missing run name
    assert "ensemble agent" in page


def test_render_report_from_run_files(tmp_path: Path) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, weights=False, summary=False)
    files = RunFiles.read(run)
    assert list(files.equity.columns)[:2] == ["ppo", "buy_and_hold"]
    page = render_report(files)
    assert "ppo-portfolio-sp500" in page and not (run / "report.html").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "missing"),
        ("", "cannot be read"),
        ("date,ppo\n2020-01-02,1\n", "must start with a 'timestamp'"),
        ("timestamp,ppo\n2020-01-02,abc\n", "'ppo' is not numeric"),
        ("timestamp,ppo\nyesterday,1\n", "non-ISO timestamp"),
    ],
)
def test_bad_equity_csv_is_named(tmp_path: Path, content: str | None, reason: str) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, weights=False, summary=False)
    (run / "equity.csv").unlink()
    if content is not None:
        (run / "equity.csv").write_text(content)
    with pytest.raises(RLTradeError, match=rf"equity\.csv.*{re.escape(reason)}|{re.escape(reason)}.*equity\.csv"):
        write_report(run)
    assert not (run / "report.html").exists()


@pytest.mark.parametrize("name", ["config.yaml", "manifest.json", "metrics.json"])
def test_missing_required_file_is_named(tmp_path: Path, name: str) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, weights=False, summary=False)
    (run / name).unlink()
    with pytest.raises(RLTradeError, match=re.escape(name)):
        write_report(run)


def test_malformed_metrics_json_is_named(tmp_path: Path) -> None:
    run = build_run_dir(tmp_path, n_seeds=1, weights=False, summary=False)
    (run / "metrics.json").write_text('{"ppo": {"sharpe": "high"}}')
    with pytest.raises(RLTradeError, match=r"metrics\.json.*ppo\.sharpe"):
        write_report(run)
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(RLTradeError, match=r"metrics\.json.*not valid JSON"):
        write_report(run)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary on PATH (apt install chromium)")
def test_renders_in_a_real_browser(full_run: Path, full_html: str) -> None:
    chromium = _chromium()
    assert chromium is not None
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={full_run.parent / 'chromium-profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            (full_run / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    dom = result.stdout
    for div in ("equity-plot", "drawdown-plot", "weights-plot", "quarters-plot"):
        plot = dom.split(f'id="{div}"')[1][:20000]
        assert "main-svg" in plot, f"plotly did not draw {div}"
