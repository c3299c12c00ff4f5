"""The ``rltrade`` command line: one module per command group, each a thin mirror of the Python API.

- :mod:`rltrade.cli.app`: the Typer app and its global options;
- :mod:`rltrade.cli.data`: ``rltrade data sources|ingest|show``;
- :mod:`rltrade.cli.run`: ``rltrade run|train|backtest|report``;
- :mod:`rltrade.cli.common`: shared options and checks; :mod:`rltrade.cli.tables`: results tables.
"""

from rltrade.cli import data, live, run, signals  # noqa: F401  (registers the commands on the app)
from rltrade.cli.app import app, data_app
from rltrade.cli.common import _console, _load, _stage, parse_sets
from rltrade.cli.tables import _print_results

__all__ = ["_console", "_load", "_print_results", "_stage", "app", "data_app", "parse_sets"]
