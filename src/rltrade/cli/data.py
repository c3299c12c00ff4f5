"""``rltrade data``: ingest, inspect and list market data sources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from rltrade.errors import RLTradeError

if TYPE_CHECKING:
    from rich.table import Table

from rltrade.cli.app import data_app
from rltrade.cli.common import OptionError, StoreOption, _check_date, _check_tz, _console, _fail
from rltrade.cli.tables import _fit


@data_app.command("sources")
def data_sources() -> None:
    """List the data sources, one per line."""
    from rltrade.data.sources import list_sources

    for src in list_sources():
        typer.echo(f"{src.spec:<16} {src.description}")


@data_app.command("ingest")
def data_ingest(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="Source: sample:sp500, csv:PATH, finrl:PATH, yahoo, ... (see `rltrade data sources`); "
            "tick data: lobster:MESSAGE_FILE or taq:PATH."
        ),
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
        str,
        typer.Option(
            help="Time zone of naive timestamps in files, an IANA name (America/New_York); "
            "tick data (lobster:, taq:) default to America/New_York."
        ),
    ] = "UTC",
    accept_jumps: Annotated[
        bool, typer.Option("--accept-jumps", help="Accept one-bar moves over 50% in data without adjustment factors.")
    ] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Replace stored bars instead of merging.")] = False,
    orderbook: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="lobster: the orderbook file.", show_default="the message file's name with _orderbook_"),
    ] = None,
    date: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Tick data: the session date, YYYY-MM-DD (lobster: instead of the file name's; taq: the day to read).",
            show_default="the file's",
        ),
    ] = None,
) -> None:
    """Validate bars (or one session of ticks) from SOURCE and write them to the store (atomic, idempotent).

    Tick sessions go to STORE/ticks/symbol=S/date=YYYY-MM-DD/events.parquet.
    """
    from tqdm import tqdm

    from rltrade.data.sources import fetch
    from rltrade.data.store import BarStore

    wanted = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    if source.split(":", 1)[0] in TICK_SOURCES:
        # --tz left at its default means the exchange's zone for ticks (bars keep UTC); compared by
        # name because typer's ParameterSource is not click's class
        given_tz = None if getattr(ctx.get_parameter_source("tz"), "name", "DEFAULT") == "DEFAULT" else tz
        _ingest_ticks(
            source, wanted, store, given_tz, orderbook, date, start=start, end=end, freq=freq, jumps=accept_jumps
        )
        return
    try:
        for name, value in (("--orderbook", orderbook), ("--date", date)):
            if value is not None:
                raise OptionError(f"{name} applies to tick sources ({', '.join(f'{k}:' for k in TICK_SOURCES)}) only")
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


#: Source kinds holding level-I tick data (one session per ingest, into the tick store).
TICK_SOURCES: tuple[str, ...] = ("lobster", "taq")


def _ingest_ticks(
    source: str,
    symbols: list[str] | None,
    store: str | None,
    tz: str | None,
    orderbook: str | None,
    date: str | None,
    **bar_options: object,
) -> None:
    """``rltrade data ingest lobster:FILE`` / ``taq:FILE``: read one session, validate, store, print one line."""
    import pandas as pd

    from rltrade.data.ticks.lobster import EXCHANGE_TZ, read_lobster
    from rltrade.data.ticks.store import TickStore
    from rltrade.data.ticks.taq import read_taq

    kind, _, path = source.partition(":")
    try:
        if not path:
            raise OptionError(f"{kind}: needs a file, e.g. {kind}:PATH")
        given = [name for name, value in bar_options.items() if value not in (None, False)]
        if given:
            flag = {"start": "--start", "end": "--end", "freq": "--freq", "jumps": "--accept-jumps"}[given[0]]
            raise OptionError(f"{flag} applies to bar sources only; pick a tick session with --date")
        if symbols is not None and len(symbols) != 1:
            raise OptionError(f"--symbols: a {kind}: file holds one symbol; pass one name")
        if kind == "taq" and not symbols:
            raise OptionError("taq: needs the symbol the file's trades and quotes are of: --symbols NAME")
        if kind != "lobster" and orderbook is not None:
            raise OptionError("--orderbook applies to lobster: files only")
        if date is not None:
            date = _check_date(date, "--date").strftime("%Y-%m-%d")
        tz = tz or EXCHANGE_TZ
        _check_tz(tz)
        tick_store = TickStore(store)
        symbol = symbols[0] if symbols else None
        if kind == "lobster":
            events = read_lobster(path, orderbook, symbol=symbol, date=date, tz=tz)
        else:
            events = read_taq(path, symbol=str(symbol), date=date, tz=tz)
        written = tick_store.ingest(events, source=source)
    except RLTradeError as exc:
        _fail(exc)
        return

    def local(ns: int) -> str:
        return pd.Timestamp(ns, unit="ns", tz="UTC").tz_convert(events.tz).strftime("%H:%M:%S.%f")[:-3]

    typer.echo(
        f"{source}: {events.symbol} {events.date}, {len(events):,} events, {local(int(events.ts[0]))} to "
        f"{local(int(events.ts[-1]))} {events.tz}, in {written}"
    )


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
