"""The ``rltrade`` command line."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from rltrade.errors import RLTradeError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

app = typer.Typer(
    help="rltrade: deep reinforcement learning for trading, from market data to broker.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Ingest, inspect and validate market data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

# Defaults that are not a value of the option are given to Typer as show_default text: square
# brackets in a help string are rich markup to Typer, and "[default: ...]" there vanished from --help.
StoreOption = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional at runtime on 3.11
    typer.Option(
        "--store",
        help="Store directory or fsspec URI (s3://bucket/bars, memory://x); a directory, not a file.",
        show_default="$RLTRADE_STORE or ./rltrade-data",
    ),
]
#: Table width when stdout is not a terminal and $COLUMNS is not set.
PIPE_WIDTH = 100


class OptionError(RLTradeError, ValueError):
    """A command-line option has a value rltrade cannot use; the message names the option."""


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=1)


class _TqdmLogHandler(logging.Handler):
    """Log records to stderr through ``tqdm.write``, so they do not tear a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never raise
            self.handleError(record)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logging.")] = False) -> None:
    """rltrade: deep reinforcement learning for trading, from market data to broker."""
    from tqdm import tqdm

    # tqdm starts a monitor thread with the first bar, even a disabled one, and only stops it when a
    # shown bar closes; our bars refresh themselves, so no thread is left running at exit.
    tqdm.monitor_interval = 0
    handler = _TqdmLogHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


def _console() -> Console:
    """A rich console as wide as the terminal; when stdout is not a terminal, $COLUMNS or :data:`PIPE_WIDTH`."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()  # rich reads the terminal's size (or $COLUMNS)
    columns = os.environ.get("COLUMNS", "").strip()
    return Console(width=int(columns) if columns.isdigit() and int(columns) > 0 else PIPE_WIDTH)


def _check_date(value: str | None, option: str) -> Any:
    """``value`` as a timestamp (None stays None); :class:`OptionError` naming ``option`` if it is not a date."""
    import pandas as pd

    if value is None:
        return None
    reason = ""
    try:
        stamp: Any = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        stamp = None
        text = str(exc).split(": ")[0]  # "day is out of range for month: 2017-02-30"
        reason = "" if text.startswith("Unknown datetime string format") else f" ({text})"
    if stamp is None or pd.isna(stamp):
        raise OptionError(f"{option} {value!r} is not a date{reason}; write it as YYYY-MM-DD, e.g. 2005-01-01")
    return stamp


def _check_tz(tz: str) -> None:
    """Refuse a time zone zoneinfo does not know (before any file is read)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise OptionError(
            f"--tz {tz!r} is not a time zone; use an IANA name such as UTC, America/New_York or Europe/London"
        ) from None


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
    symbols: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Comma-separated symbols to keep.", show_default="all the source has"),
    ] = None,
    start: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="First date (inclusive), YYYY-MM-DD, e.g. 2005-01-01.", show_default="the source's first"),
    ] = None,
    end: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Last date (inclusive), YYYY-MM-DD.", show_default="the source's last"),
    ] = None,
    freq: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Bar frequency: 1d, 1h or 1min.", show_default="the source's"),
    ] = None,
    store: StoreOption = None,
    tz: Annotated[
        str, typer.Option(help="Time zone of naive timestamps in files, an IANA name (America/New_York).")
    ] = "UTC",
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
        first, last = _check_date(start, "--start"), _check_date(end, "--end")
        if first is not None and last is not None and first > last:
            raise OptionError(f"--start {start} is after --end {end}")
        _check_tz(tz)
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
    freq: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Only this frequency: 1d, 1h or 1min.", show_default="every frequency"),
    ] = None,
) -> None:
    """Per symbol and frequency: first/last timestamp, rows, close-only flag and content hash."""
    import pandas as pd
    from rich.markup import escape
    from rich.table import Table

    from rltrade.data.store import BarStore

    try:
        bar_store = BarStore(store)
        infos = bar_store.info(freq)
        held = bar_store.frequencies() if freq and not infos else []
    except RLTradeError as exc:
        _fail(exc)
        return
    if not infos:
        if held:
            typer.echo(f"no {freq} bars in store {bar_store.uri} (it holds {', '.join(held)})")
        else:
            typer.echo(f"store {bar_store.uri} is empty; try `rltrade data ingest sample:sp500`")
        return
    console = _console()

    def stamp(ts: pd.Timestamp, freq: str) -> str:
        return ts.strftime("%Y-%m-%d") if freq == "1d" else ts.tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")

    def build(shown: Sequence[str], compact: bool) -> Table:
        table = Table(title=escape(f"store {bar_store.uri}"))
        for col in shown:
            if col == "source":  # paths fold rather than widen the table
                table.add_column(col, overflow="fold", max_width=24)
            else:
                table.add_column(col, justify="right" if col == "rows" else "left", no_wrap=True)
        for info in infos:
            cells = {
                "symbol": escape(info.symbol),
                "freq": info.freq,
                "first": stamp(info.first, info.freq),
                "last": stamp(info.last, info.freq),
                "rows": f"{info.rows:,}",
                "close-only": "yes" if info.close_only else "no",
                "adjusted": "yes" if info.adjusted else "no",
                "source": escape(info.source),
                "content hash": info.content_hash[: 8 if compact else 16],
            }
            table.add_row(*(cells[col] for col in shown))
        return table

    columns = ("symbol", "freq", "first", "last", "rows", "close-only", "adjusted", "source", "content hash")
    table, dropped = _fit(console, build, columns, ("content hash", "adjusted", "close-only", "source"))
    console.print(table)
    if dropped:
        typer.echo(f"(not shown at {console.width} columns: {', '.join(dropped)})")
    typer.echo(f"{len(infos)} partition(s), {len({i.symbol for i in infos})} symbol(s)")


RunsDirOption = Annotated[Path, typer.Option("--runs-dir", help="Where run directories are created.")]
SeedsOption = Annotated[int, typer.Option("--seeds", min=1, help="Train N agents (seeds seed..seed+N-1).")]
TimestepsOption = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--timesteps",
        min=1,
        help="Override agent.timesteps of the config (quick looks).",
        show_default="the config's agent.timesteps",
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


SetOption = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--set",
        metavar="FIELD=VALUE",
        help="Override any dotted field of the config, e.g. --set data.symbols=[AAPL,MSFT] "
        "--set agent.timesteps=5000 (VALUE is YAML; validated like the file). Repeatable.",
        show_default=False,
    ),
]


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``["agent.timesteps=5000", "data.symbols=[AAPL,MSFT]"]`` → ``{"agent.timesteps": 5000, ...}`` (YAML values)."""
    import yaml

    from rltrade.config import ConfigError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not all(part.isidentifier() for part in key.split(".")):
            raise ConfigError(
                f"--set {item!r}: expected FIELD=VALUE with a dotted field, e.g. --set agent.timesteps=5000"
            )
        try:
            out[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: {text!r} is not a YAML value ({getattr(exc, 'problem', exc)})") from None
    return out


def _load(config_path: Path, timesteps: int | None, sets: list[str] | None = None) -> Any:
    from rltrade.workflow import load as load_config

    overrides = parse_sets(sets)
    if timesteps:
        overrides["agent.timesteps"] = timesteps
    return load_config(config_path, overrides or None)


def _stage(message: str) -> None:
    """A "> message" line on stderr, written through tqdm so that a running progress bar is redrawn below it."""
    from tqdm import tqdm

    text = f"> {message}"
    tqdm.write(typer.style(text, fg=typer.colors.CYAN) if sys.stderr.isatty() else text, file=sys.stderr)


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


def _print_results(run_dir: Path) -> None:
    """The metrics table (and the seed statistics) of a run directory, as wide as the terminal allows."""

    from rich.markup import escape
    from rich.table import Table

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


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="Run config (YAML), e.g. configs/quickstart.yaml.")],
    runs_dir: RunsDirOption = Path("runs"),
    seeds: SeedsOption = 1,
    timesteps: TimestepsOption = None,
    sets: SetOption = None,
    timesteps_scale: Annotated[
        float, typer.Option("--timesteps-scale", min=0.0, help="Ensemble: multiply each agent's timesteps.")
    ] = 1.0,
    quarters: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--quarters", min=1, help="Ensemble: stop after N quarters.", show_default="every quarter"),
    ] = None,
    resume: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--resume",
            help="Ensemble: continue the interrupted run RUN_DIR from its last finished quarter.",
            show_default="a new run",
        ),
    ] = None,
    ray_address: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--ray-address", help="Ensemble: join this Ray cluster.", show_default="a local Ray"),
    ] = None,
    no_ray: Annotated[
        bool, typer.Option("--no-ray", help="Ensemble: train the agents one after the other, without Ray.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """The main job: ingest if needed, train, backtest out of sample against baselines, report."""
    from rltrade import workflow

    try:
        cfg = _load(resume / "config.yaml" if resume else config, timesteps, sets)
        options: dict[str, Any] = {}  # the strategy's own options, only where the user set them
        if timesteps_scale != 1.0:
            options["timesteps_scale"] = timesteps_scale
        if quarters is not None:
            options["max_quarters"] = quarters
        if resume is not None:
            options["resume"] = resume
        if no_ray:
            options["use_ray"] = False
        if ray_address is not None:
            options["ray_address"] = ray_address
        result = workflow.run(cfg, runs_dir, seeds, progress=not quiet, on_stage=_stage, **options)
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
    sets: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train the agent(s) of CONFIG and write a run directory (no backtest)."""
    from rltrade import workflow

    try:
        cfg = _load(config, timesteps, sets)
        run_dir = workflow.train(cfg, runs_dir, seeds, progress=not quiet, on_stage=_stage)
    except RLTradeError as exc:
        _fail(exc)
        return
    typer.echo(f"run directory: {run_dir}")


@app.command("backtest")
def backtest_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `rltrade train` or `rltrade run`.")],
    start: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Test start, YYYY-MM-DD, after the training range (default: the config's test start)."),
    ] = None,
    end: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Test end, YYYY-MM-DD (default: the config's test end)."),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Backtest the saved agents of RUN_DIR out of sample against the baselines.

    Over the config's test range the results are written to RUN_DIR itself; with --start or
    --end they go to RUN_DIR/backtests/START_END/ (with its own backtest.json and report), and
    the run's own results are left unchanged.
    """
    from rltrade import workflow

    try:
        result = workflow.backtest(run_dir, start, end, progress=not quiet, on_stage=_stage)
        workflow.write_run_report(result.run_dir)
    except RLTradeError as exc:
        _fail(exc)
        return
    _print_results(result.run_dir)
    typer.echo(f"results: {result.run_dir}")
    typer.echo(f"report: {result.run_dir / 'report.html'}")


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
