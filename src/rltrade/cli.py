"""The ``rltrade`` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rltrade.config import ConfigError
from rltrade.errors import RLTradeError

app = typer.Typer(
    help="rltrade: deep reinforcement learning for trading, from market data to broker.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Ingest, inspect and validate market data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

StoreOption = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional at runtime on 3.11
    typer.Option("--store", help="Store directory or fsspec URI [default: $RLTRADE_STORE or ./rltrade-data]."),
]


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=1)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logging.")] = False) -> None:
    """rltrade: deep reinforcement learning for trading, from market data to broker."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@data_app.command("sources")
def data_sources() -> None:
    """List the data sources, one per line."""
    from rltrade.data.sources import list_sources

    for src in list_sources():
        typer.echo(f"{src.spec:<16} {src.description}")


@data_app.command("ingest")
def data_ingest(
    source: Annotated[
        str, typer.Argument(help="Source: sample:sp500, csv:PATH, finrl:PATH, yahoo, ... (see `rltrade data sources`).")
    ],
    symbols: Annotated[Optional[str], typer.Option(help="Comma-separated symbols to keep (all by default).")] = None,  # noqa: UP045
    start: Annotated[Optional[str], typer.Option(help="First date (inclusive), e.g. 2005-01-01.")] = None,  # noqa: UP045
    end: Annotated[Optional[str], typer.Option(help="Last date (inclusive).")] = None,  # noqa: UP045
    freq: Annotated[Optional[str], typer.Option(help="Bar frequency: 1d, 1h or 1min [default: the source's].")] = None,  # noqa: UP045
    store: StoreOption = None,
    tz: Annotated[str, typer.Option(help="Time zone of naive timestamps in files.")] = "UTC",
    accept_jumps: Annotated[
        bool, typer.Option("--accept-jumps", help="Accept one-bar moves over 50% in data without adjustment factors.")
    ] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Replace stored bars instead of merging.")] = False,
) -> None:
    """Validate bars from SOURCE and write them to the store (atomic, idempotent)."""
    from tqdm import tqdm

    from rltrade.data.sources import fetch
    from rltrade.data.store import BarStore

    wanted = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    try:
        bar_store = BarStore(store)
        batches = fetch(source, wanted, start, end, freq, tz=tz)
        with tqdm(total=1, desc=f"ingest {source}", unit="batch", disable=None, leave=False) as bar:
            results = bar_store.ingest(batches, source=source, replace=replace, accept_jumps=accept_jumps)
            bar.update(1)
    except RLTradeError as exc:
        _fail(exc)
        return
    counts: dict[str, int] = {}
    for res in results:
        counts[res.status] = counts.get(res.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    rows = sum(r.rows_after for r in results)
    typer.echo(f"{source}: {len(results)} symbol(s) ({summary}), {rows:,} rows in {bar_store.uri}")


@data_app.command("show")
def data_show(
    store: StoreOption = None,
    freq: Annotated[Optional[str], typer.Option(help="Only this frequency.")] = None,  # noqa: UP045
) -> None:
    """Per symbol and frequency: first/last timestamp, rows, close-only flag and content hash."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from rltrade.data.store import BarStore

    try:
        bar_store = BarStore(store)
        infos = bar_store.info(freq)
    except RLTradeError as exc:
        _fail(exc)
        return
    if not infos:
        typer.echo(f"store {bar_store.uri} is empty; try `rltrade data ingest sample:sp500`")
        return
    table = Table(title=f"store {bar_store.uri}")
    for col in ("symbol", "freq", "first", "last", "rows", "close-only", "adjusted", "source", "content hash"):
        table.add_column(col, justify="right" if col == "rows" else "left")

    def stamp(ts: pd.Timestamp, freq: str) -> str:
        return ts.strftime("%Y-%m-%d") if freq == "1d" else ts.tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")

    for info in infos:
        table.add_row(
            info.symbol,
            info.freq,
            stamp(info.first, info.freq),
            stamp(info.last, info.freq),
            f"{info.rows:,}",
            "yes" if info.close_only else "no",
            "yes" if info.adjusted else "no",
            info.source,
            info.content_hash[:16],
        )
    Console(width=200).print(table)
    typer.echo(f"{len(infos)} partition(s), {len({i.symbol for i in infos})} symbol(s)")


RunsDirOption = Annotated[Path, typer.Option("--runs-dir", help="Where run directories are created.")]
SeedsOption = Annotated[int, typer.Option("--seeds", min=1, help="Train N agents (seeds seed..seed+N-1).")]
TimestepsOption = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--timesteps", min=1, help="Override agent.timesteps of the config (quick looks)."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _load(config_path: Path, timesteps: int | None) -> Any:
    from rltrade.config import load_config

    return load_config(config_path, {"agent.timesteps": timesteps} if timesteps else None)


def _stage(message: str) -> None:
    typer.secho(f"> {message}", err=True, fg=typer.colors.CYAN)


def _print_results(run_dir: Path) -> None:
    """The metrics table (and the seed statistics) of a run directory."""
    import json

    from rich.console import Console
    from rich.table import Table

    from rltrade.backtest.metrics import METRIC_NAMES, format_metric
    from rltrade.backtest.stats import mean_std_text

    metrics = json.loads((run_dir / "metrics.json").read_text())
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    console = Console(width=200)
    shown = [m for m in METRIC_NAMES if m != "hit_rate"]
    table = Table(title=f"out-of-sample metrics ({run_dir.name}; Sharpe annualised with sqrt(252))")
    table.add_column("strategy")
    for name in shown:
        table.add_column(name, justify="right")
    for strategy, values in metrics.items():
        cells = [format_metric(m, float("nan") if values.get(m) is None else values[m]) for m in shown]
        table.add_row(strategy, *cells)
    console.print(table)
    if summary and summary.get("n_seeds", 1) > 1:
        seeds = Table(title=f"over {summary['n_seeds']} seeds: mean ± std")
        seeds.add_column("strategy")
        for name in ("cumulative_return", "annual_return", "sharpe", "max_drawdown"):
            seeds.add_column(name, justify="right")
        seeds.add_column(f"Sharpe {summary['confidence']:.0%} CI", justify="right")
        seeds.add_column("PSR", justify="right")
        for row in summary["strategies"]:
            nan = float("nan")
            cells = [
                mean_std_text(
                    nan if row["mean"][m] is None else row["mean"][m],
                    nan if row["std"][m] is None else row["std"][m],
                    m,
                )
                for m in ("cumulative_return", "annual_return", "sharpe", "max_drawdown")
            ]
            lo, hi = (nan if v is None else v for v in row["sharpe_ci"])
            psr = nan if row["psr"] is None else row["psr"]
            seeds.add_row(row["name"], *cells, f"[{lo:.2f}, {hi:.2f}]", f"{psr:.2f}")
        console.print(seeds)
        welch = summary.get("welch")
        if welch and welch.get("p") is not None:
            console.print(
                f"Welch t-test, final value > random agent's (one-sided): t = {welch['t']:.2f}, p = {welch['p']:.3g}"
            )


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="Run config (YAML), e.g. configs/quickstart.yaml.")],
    runs_dir: RunsDirOption = Path("runs"),
    seeds: SeedsOption = 1,
    timesteps: TimestepsOption = None,
    timesteps_scale: Annotated[
        float, typer.Option("--timesteps-scale", min=0.0, help="Ensemble: multiply each agent's timesteps.")
    ] = 1.0,
    quarters: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--quarters", min=1, help="Ensemble: stop after N quarters."),
    ] = None,
    resume: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--resume", help="Ensemble: continue the interrupted run RUN_DIR from its last finished quarter."),
    ] = None,
    ray_address: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--ray-address", help="Ensemble: join this Ray cluster (default: a local Ray)."),
    ] = None,
    no_ray: Annotated[
        bool, typer.Option("--no-ray", help="Ensemble: train the agents one after the other, without Ray.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """The main job: ingest if needed, train, backtest out of sample against baselines, report."""
    from rltrade import workflow

    try:
        cfg = _load(resume / "config.yaml" if resume else config, timesteps)
        if cfg.strategy == "ensemble":
            from rltrade.strategies.ensemble import run_ensemble

            result = run_ensemble(
                cfg,
                runs_dir,
                seeds,
                timesteps_scale=timesteps_scale,
                max_quarters=quarters,
                resume=resume,
                use_ray=not no_ray,
                ray_address=ray_address,
                progress=not quiet,
                on_stage=_stage,
            )
        else:
            if resume is not None or quarters is not None or timesteps_scale != 1.0:
                raise ConfigError("--resume, --quarters and --timesteps-scale apply to `strategy: ensemble` configs")
            result = workflow.run(cfg, runs_dir, seeds, progress=not quiet, on_stage=_stage)
    except RLTradeError as exc:
        _fail(exc)
        return
    _print_results(result.run_dir)
    typer.echo(f"run directory: {result.run_dir}")
    typer.echo(f"report: {result.run_dir / 'report.html'}")


@app.command("train")
def train_command(
    config: Annotated[Path, typer.Argument(help="Run config (YAML).")],
    runs_dir: RunsDirOption = Path("runs"),
    seeds: SeedsOption = 1,
    timesteps: TimestepsOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train the agent(s) of CONFIG and write a run directory (no backtest)."""
    from rltrade import workflow

    try:
        cfg = _load(config, timesteps)
        run_dir = workflow.train(cfg, runs_dir, seeds, progress=not quiet, on_stage=_stage)
    except RLTradeError as exc:
        _fail(exc)
        return
    typer.echo(f"run directory: {run_dir}")


@app.command("backtest")
def backtest_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `rltrade train` or `rltrade run`.")],
    start: Annotated[Optional[str], typer.Option(help="Test start (default: the config's).")] = None,  # noqa: UP045
    end: Annotated[Optional[str], typer.Option(help="Test end (default: the config's).")] = None,  # noqa: UP045
    quiet: QuietOption = False,
) -> None:
    """Backtest the saved agents of RUN_DIR against the baselines and write equity, metrics and report."""
    from rltrade import workflow

    try:
        workflow.backtest(run_dir, start, end, progress=not quiet, on_stage=_stage)
        workflow.write_run_report(run_dir)
    except RLTradeError as exc:
        _fail(exc)
        return
    _print_results(run_dir)
    typer.echo(f"report: {run_dir / 'report.html'}")


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A backtested run directory.")],
) -> None:
    """Render RUN_DIR/report.html from the run's files."""
    from rltrade import workflow

    try:
        path = workflow.write_run_report(run_dir)
    except RLTradeError as exc:
        _fail(exc)
        return
    typer.echo(f"report: {path}")


if __name__ == "__main__":  # pragma: no cover
    app()
