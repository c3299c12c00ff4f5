"""The HTML run report, rendered from run directories built out of real S&P 500 prices (skfolio).

The run directories come from :mod:`tests.report.builder`; the report's added sections are
tested in ``test_sections.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from tests.report.builder import build_run_dir

from rltrade.errors import RLTradeError
from rltrade.report import RunFiles, render_report, write_report

# --------------------------------------------------------------------------------------------
# Tests


def test_report_is_written_atomically_next_to_the_run(full_run: Path, full_html: str) -> None:
    assert (full_run / "report.html").is_file()
    leftovers = sorted(p.name for p in full_run.iterdir())
    assert leftovers == sorted(
        [
            "config.yaml",
            "costs.csv",
            "equity.csv",
            "manifest.json",
            "metrics.json",
            "quarters.csv",
            "report.html",
            "summary.json",
            "trades.csv",
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
    assert "annualised with √252 from per-bar returns (daily bars: 252 a year)" in full_html
    assert "√252 from daily returns" not in full_html  # the old hard-coded text
    assert "Mean / std of per-bar returns × √252 (daily bars: 252 a year)" in full_html  # Sharpe's tooltip
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
    # 20 symbols: as many shown as it takes for "other" to be no larger than the largest one shown
    assert re.search(r"For ppo, 1[2-9] symbols are shown one by one and the [1-8] smallest positions", full_html)
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
