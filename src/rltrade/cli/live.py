"""``rltrade live CONFIG --broker paper|alpaca|ib [--dry-run]``: the live loop (a thin mirror of rltrade.live).

Exit codes: 0 the session ran (or there was none: market closed, not closed yet), 1 an error
(config, run, dates, stale data: nothing was sent), 2 the broker's connection was lost (the
session stopped cleanly; running the command again reconciles and sends only what is missing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rltrade.cli.app import app
from rltrade.cli.common import _check_date, _fail
from rltrade.errors import RLTradeError

#: Exit code of a session stopped by a lost connection.
LOST_CONNECTION_EXIT = 2


def _day(value: str | None, option: str) -> object:
    stamp = _check_date(value, option)
    return None if stamp is None else stamp.date()


@app.command("live")
def live_command(
    config: Annotated[
        Path, typer.Argument(help="Live config (YAML), e.g. configs/live_paper.yaml.", show_default=False)
    ],
    broker: Annotated[str, typer.Option("--broker", help="paper (embedded), alpaca or ib.")] = "paper",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Log and journal the orders; send nothing.")] = False,
    run: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional at runtime on 3.11
        typer.Option("--run", help="Run directory (or run config) to trade.", show_default="the config's run"),
    ] = None,
    date: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--date", help="Session of day T (after its close), YYYY-MM-DD.", show_default="today's"),
    ] = None,
    start: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--start", help="Paper: replay every session from this day, YYYY-MM-DD.", show_default=False),
    ] = None,
    end: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--end", help="Paper: ... to this day, YYYY-MM-DD.", show_default=False),
    ] = None,
    store: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--store", help="Bar store instead of the config's (or the run's).", show_default=False),
    ] = None,
) -> None:
    """After the close of T: reconcile with the broker, compute the run's signals, send the orders for T+1."""
    from rltrade.brokers import ConnectionLost
    from rltrade.live import load_live_config, run_live

    try:
        overrides = {"store": store} if store else {}
        cfg = load_live_config(config, overrides)
        report = run_live(
            cfg,
            broker,
            run=run,
            date=_day(date, "--date"),  # type: ignore[arg-type]
            start=_day(start, "--start"),  # type: ignore[arg-type]
            end=_day(end, "--end"),  # type: ignore[arg-type]
            dry_run=dry_run,
            on_session=lambda result: typer.echo(result.line()),
        )
    except ConnectionLost as exc:
        typer.secho(
            f"error: {exc}; the session stopped cleanly: run the same command again, it reconciles with the broker "
            "and sends only what is missing",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(code=LOST_CONNECTION_EXIT) from None
    except RLTradeError as exc:
        _fail(exc)
        return
    comparison = report.comparison()
    if comparison is not None:
        for line in comparison.lines(report.account, report.run_id):
            typer.echo(line)
