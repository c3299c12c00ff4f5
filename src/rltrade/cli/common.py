"""What every command shares: options, their checks, the one-line error, stage lines, the console."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from rltrade.errors import RLTradeError

if TYPE_CHECKING:
    from rich.console import Console

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
