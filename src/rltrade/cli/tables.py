"""The results tables of a run directory, as wide as the terminal allows (read through rltrade.runs.Run)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

from rltrade.cli.common import _console

#: Short headers of the metrics table (metrics.json keeps the full names).
METRIC_HEADERS: dict[str, str] = {
    "cumulative_return": "cum ret",
    "annual_return": "ann ret",
    "annual_volatility": "vol",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "calmar": "Calmar",
    "max_drawdown": "max DD",
    "turnover": "turnover",
    "final_value": "final",
}
#: Columns left out, in this order, while a table is wider than the terminal.
_DROP_METRICS = ("calmar", "sortino", "turnover", "annual_volatility", "annual_return")
_DROP_SEED_COLUMNS = ("annual_return", "psr", "cumulative_return")


def _sharpe_basis(annualization: Any) -> str:
    """How a run's Sharpe ratios are annualised (its manifest's, or its backtest.json's, ``annualization``)."""
    return f"sqrt({annualization.periods_per_year:g}) of per-bar returns ({annualization.basis})"


def _compact_value(value: float) -> str:
    """``2,533,206.68`` as ``2.53M`` (a narrow terminal's final value)."""
    import math

    if not math.isfinite(value):
        return "n/a"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.2f}{suffix}"
    return f"{value:.0f}"


def _fit(
    console: Console, build: Callable[[Sequence[str], bool], Table], columns: Sequence[str], drop: Sequence[str]
) -> tuple[Table, list[str]]:
    """The widest table ``build(columns, compact)`` that fits ``console``: compact first, then fewer columns."""
    shown, compact, dropped = list(columns), False, list[str]()
    while True:
        table = build(shown, compact)
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        if natural <= console.width:
            return table, dropped
        if not compact:
            compact = True
            continue
        left = [c for c in drop if c in shown]
        if not left:
            return table, dropped  # rich wraps what still does not fit
        shown.remove(left[0])
        dropped.append(left[0])


def _print_orderbook_results(run_dir: Path) -> None:
    """The final-P&L table of an order-book run and its Welch t-test."""
    from rich.table import Table

    from rltrade.runs.files import read_json_object

    metrics = read_json_object(run_dir / "metrics.json")
    table = Table(title=f"final P&L of the test window, USD ({run_dir.name})")
    table.add_column("agent")
    for name in ("runs", "mean", "std", "min", "max"):
        table.add_column(name, justify="right", no_wrap=True)
    for agent, values in metrics["agents"].items():
        table.add_row(agent, f"{values['runs']}", *(f"{values[m]:,.2f}" for m in ("mean", "std", "min", "max")))
    console = _console()
    console.print(table)
    welch = metrics["welch"]
    console.print(f"Welch t-test, qlearning > random (one-sided): t = {welch['t']:.2f}, p = {welch['p']:.3g}")


def _print_results(run_dir: Path) -> None:
    """The metrics table (and the seed statistics) of a run directory, as wide as the terminal allows."""

    from rich.markup import escape
    from rich.table import Table

    if (run_dir / "pnl.csv").exists():  # an order-book run: P&L in currency, no annualised metrics
        _print_orderbook_results(run_dir)
        return

    from rltrade.backtest.metrics import METRIC_NAMES, format_metric
    from rltrade.backtest.stats import mean_std_text
    from rltrade.runs import Run

    run = Run.open(run_dir)
    metrics, summary = run.metrics, run.summary
    console = _console()
    nan = float("nan")
    title = escape(f"out-of-sample metrics ({run_dir.name}; Sharpe annualised with {_sharpe_basis(run.annualization)})")

    def build(shown: Sequence[str], compact: bool) -> Table:
        table = Table(title=title)
        table.add_column("strategy", overflow="fold")
        for name in shown:
            table.add_column(METRIC_HEADERS.get(name, name), justify="right", no_wrap=True)
        for strategy, values in metrics.items():
            cells = []
            for m in shown:
                raw = values.get(m)
                value = nan if raw is None else float(raw)
                cells.append(_compact_value(value) if compact and m == "final_value" else format_metric(m, value))
            table.add_row(escape(strategy), *cells)
        return table

    table, dropped = _fit(console, build, [m for m in METRIC_NAMES if m != "hit_rate"], _DROP_METRICS)
    console.print(table)
    if dropped:
        names = ", ".join(METRIC_HEADERS[m] for m in dropped)
        console.print(f"(not shown at {console.width} columns: {names}; see metrics.json)")
    if summary and summary.get("n_seeds", 1) > 1:
        columns = ("cumulative_return", "annual_return", "sharpe", "max_drawdown")

        def build_seeds(shown: Sequence[str], compact: bool) -> Table:
            seeds = Table(title=f"over {summary['n_seeds']} seeds: mean ± std")
            seeds.add_column("strategy", overflow="fold")
            for name in shown:
                header = {"ci": f"Sharpe {summary['confidence']:.0%} CI", "psr": "PSR"}.get(name)
                seeds.add_column(header or METRIC_HEADERS[name], justify="right", no_wrap=True)
            for row in summary["strategies"]:
                cells = []
                for name in shown:
                    if name == "ci":
                        lo, hi = (nan if v is None else v for v in row["sharpe_ci"])
                        cells.append(escape(f"[{lo:.2f}, {hi:.2f}]"))  # "[nan, nan]" is not markup
                    elif name == "psr":
                        cells.append(f"{nan if row['psr'] is None else row['psr']:.2f}")
                    else:
                        mean, std = row["mean"][name], row["std"][name]
                        cells.append(mean_std_text(nan if mean is None else mean, nan if std is None else std, name))
                seeds.add_row(escape(row["name"]), *cells)
            return seeds

        seeds, _ = _fit(console, build_seeds, [*columns, "ci", "psr"], _DROP_SEED_COLUMNS)
        console.print(seeds)
        welch = summary.get("welch")
        if welch and welch.get("p") is not None:
            console.print(
                f"Welch t-test, final value > random agent's (one-sided): t = {welch['t']:.2f}, p = {welch['p']:.3g}"
            )
