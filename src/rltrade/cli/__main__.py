"""``python -m rltrade.cli``: the command line."""

from rltrade.cli import app

app()
