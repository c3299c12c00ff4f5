"""``rltrade signals``: the daily signal job, the export and the cross-check (thin mirrors of rltrade.signals).

``rltrade signals RUN_DIR [--date D]`` is the job itself (the ``compute`` command, the group's
default); ``rltrade signals export RUN_DIR`` and ``rltrade signals crosscheck RUN_DIR`` are its
two other commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from rltrade.cli.app import app
from rltrade.cli.common import OptionError, _check_date, _fail
from rltrade.errors import RLTradeError


class _ComputeByDefault(TyperGroup):
    """A group whose first argument, when it names no command, is the ``compute`` command's RUN_DIR."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's click Context
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["compute", *args]
        return super().parse_args(ctx, args)


signals_app = typer.Typer(
    cls=_ComputeByDefault,
    help="Daily signals of a trained run: `rltrade signals RUN_DIR [--date D]` computes and caches them; "
    "export writes them as CSV/Parquet; crosscheck backtests the export in bt.",
    no_args_is_help=True,
)
app.add_typer(signals_app, name="signals")

RunDirArgument = Annotated[
    Path, typer.Argument(help="A run directory written by `rltrade train` or `rltrade run`.", show_default=False)
]
SignalStoreOption = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional at runtime on 3.11
    typer.Option("--store", help="Bar store to read instead of the run config's data.store.", show_default=False),
]


def _day(value: str | None, option: str) -> Any:
    stamp = _check_date(value, option)
    return None if stamp is None else stamp.date()


@signals_app.command("compute")
def compute_command(
    run_dir: RunDirArgument,
    date: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--date", help="As-of date T, YYYY-MM-DD (a trading day).", show_default="the store's last day"),
    ] = None,
    update_data: Annotated[
        bool, typer.Option("--update-data", help="First ingest the new bars of the run's data source.")
    ] = False,
    store: SignalStoreOption = None,
) -> None:
    """After the close of T: the target weights for the next session, from data up to T, into the signal cache."""
    from rltrade.signals import compute_signals

    try:
        rows = compute_signals(run_dir, _day(date, "--date"), update_data=update_data, store=store)
    except RLTradeError as exc:
        _fail(exc)
        return
    first = rows.iloc[0]
    typer.echo(
        f"signals of {first['run_id']} as of {first['as_of']} (seed {first['seed']}, last bar "
        f"{first['last_bar'].date()}), for the next session:"
    )
    width = max(len(str(s)) for s in rows["symbol"])
    typer.echo(f"{'symbol':<{width}}  {'weight':>9}  {'score':>10}")
    for row in rows.itertuples():
        typer.echo(f"{row.symbol!s:<{width}}  {row.weight:>9.4%}  {row.score:>10.4f}")
    typer.echo(f"{'cash':<{width}}  {1.0 - float(rows['weight'].sum()):>9.4%}")


@signals_app.command("export")
def export_command(
    run_dir: RunDirArgument,
    start: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="First as-of date, YYYY-MM-DD.", show_default="the run's test start"),
    ] = None,
    end: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Last as-of date, YYYY-MM-DD.", show_default="the store's last day"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv (Quantopian self-serve style) or parquet.")] = "csv",
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="Output file.", show_default="RUN_ID-signals-START_END.FORMAT here"),
    ] = None,
    store: SignalStoreOption = None,
) -> None:
    """Write the signals of every trading day in [--start, --end] (date, symbol, signal, weight; dated as of T)."""
    from rltrade.signals import export_signals, read_export

    try:
        if fmt.strip().lower() not in ("csv", "parquet"):
            raise OptionError(f"--format {fmt!r}: use csv or parquet")
        path = export_signals(run_dir, _day(start, "--start"), _day(end, "--end"), format=fmt, out=out, store=store)
        table = read_export(path)
    except RLTradeError as exc:
        _fail(exc)
        return
    typer.echo(
        f"signals: {path} ({len(table)} rows, {table['date'].nunique()} days {table['date'].iloc[0]}.."
        f"{table['date'].iloc[-1]})"
    )


@signals_app.command("crosscheck")
def crosscheck_command(
    run_dir: RunDirArgument,
    end: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Last day compared, YYYY-MM-DD.", show_default="the run's test end"),
    ] = None,
    signals: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--signals", help="An exported CSV/Parquet file to check.", show_default="the cached export"),
    ] = None,
    store: SignalStoreOption = None,
) -> None:
    """Backtest the exported signals in bt and compare with rltrade's backtest of the run (from its test start)."""
    from rltrade.signals import crosscheck

    try:
        result = crosscheck(run_dir, _day(end, "--end"), signals=signals, store=store)
    except RLTradeError as exc:
        _fail(exc)
        return
    typer.echo(result.table())
    if not result.passed:
        _fail(RLTradeError("the engines disagree beyond the tolerance (see the table above)"))
