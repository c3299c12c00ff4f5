"""The ``rltrade`` command line."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Optional

import typer

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


if __name__ == "__main__":  # pragma: no cover
    app()
