"""``rltrade data ingest lobster:FILE`` and ``taq:FILE``: one summary line, the session stored; bad input refused.

Refusals follow the command line's rule: one ``error:`` line, exit code 1, no traceback, and the
store exactly as it was (checked in a fresh process for the file-level cases, like test_errors.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import tree_digest
from tests.data.ticks.lobster_files import write_lobster
from typer.testing import CliRunner

from rltrade.cli import app
from rltrade.data.ticks import EVENT_COLUMNS, Events, TickStore, synthetic_events

runner = CliRunner()

TAQ = (
    "timestamp,type,price,size\n"
    "2024-01-02 09:30:00.000,BID,99.99,300\n"
    "2024-01-02 09:30:00.100,ASK,100.01,200\n"
    "2024-01-02 09:30:00.200,TRADE,100.01,100\n"
    "2024-01-02 15:59:59.999,ASK,100.02,400\n"
)


@pytest.fixture(scope="module")
def events() -> Events:
    return synthetic_events(seconds=600, seed=8, symbol="SYN", date="2024-01-02")


@pytest.fixture()
def folder(tmp_path: Path, events: Events) -> Path:
    write_lobster(events, tmp_path, gz=True)
    (tmp_path / "taq.csv").write_text(TAQ)
    return tmp_path


def lobster_spec(folder: Path) -> str:
    return f"lobster:{folder / 'SYN_2024-01-02_34200000_57600000_message_1.csv.gz'}"


def test_lobster_ingest(folder: Path, events: Events) -> None:
    store = folder / "store"
    result = runner.invoke(app, ["data", "ingest", lobster_spec(folder), "--store", str(store)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert f"SYN 2024-01-02, {len(events):,} events, 09:30:00.000 to " in lines[0]
    last = (int(events.ts[-1]) - int(events.ts[0])) // 10**6  # milliseconds after 09:30
    assert f"09:{30 + last // 60_000:02d}:{last // 1000 % 60:02d}.{last % 1000:03d} America/New_York" in lines[0]
    assert "ticks/symbol=SYN/date=2024-01-02/events.parquet" in lines[0]
    back = TickStore(store).load("SYN", "2024-01-02")
    for col in EVENT_COLUMNS:
        np.testing.assert_array_equal(getattr(back, col), getattr(events, col))


def test_lobster_with_explicit_orderbook_symbol_and_date(folder: Path, events: Events) -> None:
    msg = folder / "SYN_2024-01-02_34200000_57600000_message_1.csv.gz"
    book = folder / "SYN_2024-01-02_34200000_57600000_orderbook_1.csv.gz"
    os.rename(msg, folder / "m.csv.gz")
    os.rename(book, folder / "b.csv.gz")
    args = ["data", "ingest", f"lobster:{folder / 'm.csv.gz'}", "--orderbook", str(folder / "b.csv.gz")]
    result = runner.invoke(app, [*args, "--symbols", "ABC", "--date", "2024-01-03", "--store", str(folder / "s")])
    assert result.exit_code == 0, result.output
    assert TickStore(folder / "s").sessions() == [("ABC", "2024-01-03")]


def test_taq_ingest(folder: Path) -> None:
    store = folder / "store"
    args = ["data", "ingest", f"taq:{folder / 'taq.csv'}", "--symbols", "XYZ", "--store", str(store)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "XYZ 2024-01-02, 3 events, 09:30:00.100 to 15:59:59.999 America/New_York" in result.stdout
    loaded = TickStore(store).load("XYZ", "2024-01-02")
    assert loaded.price.tolist() == [1000100, 1000100, 1000200]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "2024-01-01"], "--start applies to bar sources only"),
        (["--accept-jumps"], "--accept-jumps applies to bar sources only"),
        (["--symbols", "A,B"], "holds one symbol"),
        (["--date", "2024-02-30"], "--date '2024-02-30' is not a date"),
        (["--tz", "Mars/Base"], "--tz 'Mars/Base'"),
    ],
)
def test_option_mistakes(folder: Path, extra: list[str], message: str) -> None:
    result = runner.invoke(app, ["data", "ingest", lobster_spec(folder), "--store", str(folder / "store"), *extra])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert not (folder / "store").exists()


def test_taq_needs_a_symbol_and_bars_refuse_tick_options(folder: Path) -> None:
    result = runner.invoke(app, ["data", "ingest", f"taq:{folder / 'taq.csv'}", "--store", str(folder / "store")])
    assert result.exit_code == 1 and "--symbols NAME" in result.stderr
    result = runner.invoke(app, ["data", "ingest", "csv:x.csv", "--orderbook", "b.csv", "--store", str(folder / "s")])
    assert result.exit_code == 1 and "--orderbook applies to tick sources" in result.stderr
    assert not (folder / "store").exists() and not (folder / "s").exists()


def rltrade(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "RLTRADE_STORE": str(cwd / "store"), "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-m", "rltrade.cli", *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=120
    )


def test_bad_files_in_a_fresh_process(folder: Path) -> None:
    """A truncated gzip and a crossed quote: one error line naming file and line; the store untouched."""
    assert rltrade(folder, "data", "ingest", lobster_spec(folder)).returncode == 0
    msg = folder / "SYN_2024-01-02_34200000_57600000_message_1.csv.gz"
    msg.write_bytes(msg.read_bytes()[:-100])
    (folder / "taq.csv").write_text(TAQ.replace("ASK,100.02", "ASK,99.98"))
    before = tree_digest(folder / "store")
    cases = [
        ([lobster_spec(folder)], f"error: {msg}, line ", "truncated gzip"),
        ([f"taq:{folder / 'taq.csv'}", "--symbols", "XYZ"], f"error: {folder / 'taq.csv'}, line 5: ", "crossed book"),
    ]
    for args, start, reason in cases:
        result = rltrade(folder, "data", "ingest", *args)
        assert result.returncode == 1, result.stderr
        assert result.stdout == "" and "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(start) and reason in errors[0], result.stderr
    assert tree_digest(folder / "store") == before


def test_taq_tz_given_on_the_command_line(folder: Path) -> None:
    """Tick data read naive times as New York time unless --tz says otherwise."""
    store = folder / "store"
    args = ["data", "ingest", f"taq:{folder / 'taq.csv'}", "--symbols", "XYZ", "--store", str(store), "--tz", "UTC"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 events, 09:30:00.100 to 15:59:59.999 UTC" in result.stdout
    utc = TickStore(store).load("XYZ", "2024-01-02")
    runner.invoke(app, ["data", "ingest", f"taq:{folder / 'taq.csv'}", "--symbols", "XYZ", "--store", str(store)])
    ny = TickStore(store).load("XYZ", "2024-01-02")
    assert (ny.ts - utc.ts).tolist() == [5 * 3600 * 10**9] * 3  # EST is UTC-5 in January
