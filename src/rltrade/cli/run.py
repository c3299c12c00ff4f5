"""``rltrade run``, ``train``, ``backtest`` and ``report``: thin mirrors of rltrade.run and rltrade.workflow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from rltrade.errors import RLTradeError

if TYPE_CHECKING:
    pass

from rltrade.cli.app import app
from rltrade.cli.common import QuietOption, RunsDirOption, SeedsOption, SetOption, TimestepsOption, _fail, _load, _stage
from rltrade.cli.tables import _print_results


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
