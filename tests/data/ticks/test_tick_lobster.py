"""read_lobster on hand-written LOBSTER pairs: every column, time zones, halts, empty sides, file names."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import fsspec
import numpy as np
import pytest
from tests.data.ticks.lobster_files import write_lobster, write_pair

from rltrade.data.ticks import EMPTY_ASK_PRICE, EVENT_COLUMNS, EVENT_DTYPES, read_lobster, synthetic_events
from rltrade.data.ticks.lobster import orderbook_for
from rltrade.errors import SourceError

MESSAGES = [
    "34200.000000001,1,11,100,5800000,1",
    "34200.5,1,12,200,5801000,-1",
    "34201.25,4,11,40,5800000,1",
    "34202,5,0,10,5800500,-1",
    "34203.999999999,3,12,200,5801000,-1",
    "36000.000,7,0,0,-1,-1",
    "36300,7,0,0,0,-1",
    "36600,7,0,0,1,-1",
]
BOOK = [
    "9999999999,0,5800000,100",
    "5801000,200,5800000,100",
    "5801000,200,5800000,60",
    "5801000,200,5800000,60",
    "9999999999,0,5800000,60",
    "9999999999,0,5800000,60",
    "9999999999,0,5800000,60",
    "9999999999,0,5800000,60",
]


def utc_ns(day: str, seconds: int, nanos: int = 0, tz: str = "America/New_York") -> int:
    """Seconds after local midnight as UTC nanoseconds, through zoneinfo and integer arithmetic."""
    y, m, d = map(int, day.split("-"))
    hours, rest = divmod(seconds, 3600)
    wall = datetime(y, m, d, hours, rest // 60, rest % 60, tzinfo=ZoneInfo(tz))
    return int(wall.timestamp()) * 10**9 + nanos


def test_every_column_of_a_hand_written_pair(tmp_path: Path) -> None:
    events = read_lobster(write_pair(tmp_path, MESSAGES, BOOK))
    assert (events.symbol, events.date, events.tz) == ("TEST", "2012-06-21", "America/New_York")
    day = "2012-06-21"
    expected_ts = [
        utc_ns(day, 34200, 1),
        utc_ns(day, 34200, 500_000_000),
        utc_ns(day, 34201, 250_000_000),
        utc_ns(day, 34202),
        utc_ns(day, 34203, 999_999_999),
        utc_ns(day, 36000),
        utc_ns(day, 36300),
        utc_ns(day, 36600),
    ]
    assert events.ts.tolist() == expected_ts
    assert events.ts[0] == (15_512 * 86400 + 13 * 3600 + 30 * 60) * 10**9 + 1  # 09:30 EDT = 13:30 UTC
    assert events.kind.tolist() == [1, 1, 4, 5, 3, 7, 7, 7]
    assert events.order_id.tolist() == [11, 12, 11, -1, 12, -1, -1, -1]  # LOBSTER's 0 means no order
    assert events.size.tolist() == [100, 200, 40, 10, 200, 0, 0, 0]
    assert events.price.tolist() == [5800000, 5801000, 5800000, 5800500, 5801000, -1, 0, 1]  # halt states kept
    assert events.side.tolist() == [1, -1, 1, -1, -1, 0, 0, 0]
    assert events.ask_price.tolist() == [EMPTY_ASK_PRICE, 5801000, 5801000, 5801000] + [EMPTY_ASK_PRICE] * 4
    assert events.ask_size.tolist() == [0, 200, 200, 200, 0, 0, 0, 0]
    assert events.bid_price.tolist() == [5800000] * 8
    assert events.bid_size.tolist() == [100, 100, 60, 60, 60, 60, 60, 60]
    for col in EVENT_COLUMNS:
        assert getattr(events, col).dtype == np.dtype(EVENT_DTYPES[col]), col


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [("2012-01-03", 14), ("2012-03-09", 14), ("2012-03-12", 13), ("2012-11-02", 13), ("2012-11-05", 14)],
)
def test_seconds_after_midnight_follow_daylight_saving(tmp_path: Path, day: str, utc_hour: int) -> None:
    """09:30 New York is 14:30 UTC in winter (EST) and 13:30 UTC in summer (EDT), on both sides of each change."""
    msg = write_pair(tmp_path, MESSAGES[:2], BOOK[:2], name=f"TEST_{day}_34200000_57600000")
    events = read_lobster(msg)
    assert events.date == day
    assert events.ts[0] == utc_ns(day, 34200, 1)
    assert (events.ts[0] // 10**9) % 86400 == utc_hour * 3600 + 30 * 60


def test_other_time_zone(tmp_path: Path) -> None:
    msg = write_pair(tmp_path, MESSAGES[:2], BOOK[:2])
    events = read_lobster(msg, tz="Europe/London")
    assert events.ts[0] == utc_ns("2012-06-21", 34200, 1, tz="Europe/London")
    assert events.tz == "Europe/London"


def test_gzip_and_plain_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = read_lobster(write_pair(tmp_path / "a", MESSAGES, BOOK))
    zipped = read_lobster(write_pair(tmp_path / "b", MESSAGES, BOOK, gz=True))
    for col in EVENT_COLUMNS:
        np.testing.assert_array_equal(getattr(plain, col), getattr(zipped, col))


def test_symbol_date_and_orderbook_from_the_file_name(tmp_path: Path) -> None:
    msg = write_pair(tmp_path, MESSAGES, BOOK, name="BRK_A_2013-01-02_34200000_57600000", gz=True)
    assert orderbook_for(str(msg)) == str(tmp_path / "BRK_A_2013-01-02_34200000_57600000_orderbook_1.csv.gz")
    events = read_lobster(msg)
    assert (events.symbol, events.date) == ("BRK_A", "2013-01-02")
    given = read_lobster(msg, symbol="XYZ", date="2013-01-03")
    assert (given.symbol, given.date) == ("XYZ", "2013-01-03")
    assert given.ts[0] - events.ts[0] == 86400 * 10**9


def test_explicit_orderbook_and_a_file_name_without_the_pattern(tmp_path: Path) -> None:
    msg, ob = tmp_path / "messages.csv", tmp_path / "book.csv"
    msg.write_text("\n".join(MESSAGES) + "\n")
    ob.write_text("\n".join(BOOK) + "\n")
    with pytest.raises(SourceError, match="cannot derive the orderbook file"):
        read_lobster(msg, symbol="X", date="2012-06-21")
    with pytest.raises(SourceError, match="cannot tell the symbol"):
        read_lobster(msg, ob)
    events = read_lobster(msg, ob, symbol="X", date="2012-06-21")
    assert len(events) == len(MESSAGES)
    with pytest.raises(SourceError, match="session date '2012-02-30' does not exist"):
        read_lobster(msg, ob, symbol="X", date="2012-02-30")
    with pytest.raises(SourceError, match="file not found"):
        read_lobster(tmp_path / "GONE_2012-06-21_1_2_message_1.csv")


def test_a_multi_level_orderbook_keeps_level_one(tmp_path: Path) -> None:
    deeper = [f"{line},5802000,300,5799000,400" for line in BOOK]
    one = read_lobster(write_pair(tmp_path, MESSAGES, BOOK))
    (tmp_path / "two").mkdir()
    two = read_lobster(write_pair(tmp_path / "two", MESSAGES, deeper))
    for col in EVENT_COLUMNS:
        np.testing.assert_array_equal(getattr(one, col), getattr(two, col))


def test_fsspec_uri(tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    base = "memory://lobster-test/TEST_2012-06-21_34200000_57600000"
    with fs.open(f"{base}_message_1.csv.gz", "wb") as fh:
        fh.write(gzip.compress(("\n".join(MESSAGES) + "\n").encode()))
    with fs.open(f"{base}_orderbook_1.csv.gz", "wb") as fh:
        fh.write(gzip.compress(("\n".join(BOOK) + "\n").encode()))
    local = read_lobster(write_pair(tmp_path, MESSAGES, BOOK))
    remote = read_lobster(f"{base}_message_1.csv.gz")
    for col in EVENT_COLUMNS:
        np.testing.assert_array_equal(getattr(local, col), getattr(remote, col))


def test_synthetic_session_round_trips_through_lobster_files(tmp_path: Path) -> None:
    """A synthetic stream written in LOBSTER's format reads back exactly (nanosecond times included)."""
    events = synthetic_events(seconds=600, seed=3, symbol="SYN", date="2024-03-11")  # the day after a DST change
    back = read_lobster(write_lobster(events, tmp_path))
    assert (back.symbol, back.date) == ("SYN", "2024-03-11")
    for col in EVENT_COLUMNS:
        np.testing.assert_array_equal(getattr(back, col), getattr(events, col), err_msg=col)


def test_a_wall_clock_time_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    """02:30 on 2012-03-11 was skipped in New York (clocks went from 02:00 to 03:00)."""
    from rltrade.data.ticks import TickValidationError

    messages = ["3600,1,11,100,5800000,1", "9000,1,12,200,5801000,-1"]
    msg = write_pair(tmp_path, messages, BOOK[:2], name="TEST_2012-03-11_0_57600000")
    with pytest.raises(TickValidationError) as info:
        read_lobster(msg)
    assert (info.value.origin, info.value.line) == (str(msg), 2)
    assert "9000.0 s after midnight does not exist" in info.value.reason
