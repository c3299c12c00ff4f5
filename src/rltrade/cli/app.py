"""The ``rltrade`` Typer app and its global options (logging through tqdm, so bars are not torn)."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help="rltrade: deep reinforcement learning for trading, from market data to broker.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Ingest, inspect and validate market data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


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
