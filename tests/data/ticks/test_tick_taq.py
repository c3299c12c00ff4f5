"""read_taq on hand-written trades-and-quotes files: the carried book, trade sides, dropped rows, time zones."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from rltrade.data.ticks import EVENT_COLUMNS, EVENT_DTYPES, EXECUTE, QUOTE, read_taq
from rltrade.errors import SourceError, UnknownSymbolError

NY = ZoneInfo("America/New_York")


def ns(*parts: int, tz: ZoneInfo = NY) -> int:
    """A wall-clock time (y, m, d, H, M, S, microsecond) in ``tz`` as UTC nanoseconds, via zoneinfo."""
    y, m, d, hh, mm, ss, us = parts
    stamp = datetime(y, m, d, hh, mm, ss, tzinfo=tz)
    return int(stamp.timestamp()) * 10**9 + us * 1000


def write(tmp_path: Path, rows: list[str], header: str = "timestamp,type,price,size") -> Path:
    path = tmp_path / "taq.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


ROWS = [
    "2024-01-02 09:30:00.000,TRADE,100.00,50",  # no book yet: dropped
    "2024-01-02 09:30:00.100,ASK,100.02,200",  # only the ask known: dropped
    "2024-01-02 09:30:00.200,BID,99.98,300",  # both known: the first event
    "2024-01-02 09:30:00.300,TRADE,100.02,100",  # at the ask: -1
    "2024-01-02 09:30:00.400,TRADE,100.03,10",  # above the ask: -1
    "2024-01-02 09:30:00.500,TRADE,99.98,20",  # at the bid: +1
    "2024-01-02 09:30:00.600,TRADE,100.00,30",  # inside: 0
    "2024-01-02 09:30:00.700,ASK,100.01,150",
    "2024-01-02 09:30:00.800,TRADE,100.01,40",  # at the new ask: -1
    "2024-01-02 09:30:00.900,BID,99.995,75",  # a sub-penny quote
    "2024-01-02 09:30:01.000,TRADE,99.99,5",  # below the bid: +1
]


def test_book_carried_forward_and_trade_sides(tmp_path: Path) -> None:
    events = read_taq(write(tmp_path, ROWS), symbol="SYN")
    assert (events.symbol, events.date, events.tz) == ("SYN", "2024-01-02", "America/New_York")
    assert events.ts.tolist() == [ns(2024, 1, 2, 9, 30, 0, 100_000 * k) for k in range(2, 10)] + [
        ns(2024, 1, 2, 9, 30, 1, 0)
    ]
    assert events.kind.tolist() == [QUOTE, EXECUTE, EXECUTE, EXECUTE, EXECUTE, QUOTE, EXECUTE, QUOTE, EXECUTE]
    assert events.side.tolist() == [1, -1, -1, 1, 0, -1, -1, 1, 1]
    assert events.price.tolist() == [999800, 1000200, 1000300, 999800, 1000000, 1000100, 1000100, 999950, 999900]
    assert events.size.tolist() == [300, 100, 10, 20, 30, 150, 40, 75, 5]
    assert events.order_id.tolist() == [-1] * 9
    assert events.ask_price.tolist() == [1000200] * 5 + [1000100] * 4
    assert events.ask_size.tolist() == [200] * 5 + [150] * 4
    assert events.bid_price.tolist() == [999800] * 7 + [999950] * 2
    assert events.bid_size.tolist() == [300] * 7 + [75] * 2
    for col in EVENT_COLUMNS:
        assert getattr(events, col).dtype == np.dtype(EVENT_DTYPES[col]), col


def test_prices_round_to_the_nearest_ten_thousandth(tmp_path: Path) -> None:
    rows = ["2024-01-02 09:30:00,BID,12.34564,1", "2024-01-02 09:30:01,ASK,12.34567,1"]
    events = read_taq(write(tmp_path, rows), symbol="X")
    assert events.bid_price.tolist() == [123456] and events.ask_price.tolist() == [123457]


def test_offsets_and_naive_times(tmp_path: Path) -> None:
    """Naive = exchange time; an offset or Z is honoured; winter and summer get their own offsets."""
    rows = [
        "2024-07-01T09:30:00,BID,10,1",  # EDT, naive
        "2024-07-01T13:30:01Z,ASK,10.01,1",
        "2024-07-01T09:30:02-04:00,TRADE,10.01,1",
        "2024-07-01T15:30:03+02:00,TRADE,10.01,1",
    ]
    events = read_taq(write(tmp_path, rows), symbol="X")
    assert events.ts.tolist() == [ns(2024, 7, 1, 9, 30, s, 0) for s in (1, 2, 3)]  # the bid-only row is dropped
    assert events.bid_price.tolist() == [100000] * 3
    winter = read_taq(write(tmp_path, [r.replace("07-01", "01-02") for r in rows[:1]] + [
        "2024-01-02T14:30:01Z,ASK,10.01,1"
    ]), symbol="X")  # fmt: skip
    assert winter.ts.tolist() == [ns(2024, 1, 2, 9, 30, 1, 0)]
    assert winter.ts[0] // 10**9 % 86400 == 14 * 3600 + 30 * 60 + 1


def test_other_exchange_time_zone(tmp_path: Path) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    rows = ["2024-01-04 09:00:00,BID,10,1", "2024-01-04 09:00:01,ASK,10.01,1"]
    events = read_taq(write(tmp_path, rows), symbol="X", tz="Asia/Tokyo")
    assert events.ts.tolist() == [ns(2024, 1, 4, 9, 0, 1, 0, tz=tokyo)]
    assert events.ts[0] // 10**9 % 86400 == 1  # 09:00:01 in Tokyo (UTC+9) is 00:00:01 UTC
    assert events.tz == "Asia/Tokyo"


def test_sessions_are_exchange_local_days(tmp_path: Path) -> None:
    rows = [
        "2024-01-02 15:59:00,BID,10,1",
        "2024-01-02 15:59:01,ASK,10.01,1",
        "2024-01-02T23:30:00Z,TRADE,10.01,7",  # 18:30 New York: still the 2nd
        "2024-01-03 09:30:00,BID,11,2",
        "2024-01-03 09:30:01,ASK,11.01,2",
    ]
    path = write(tmp_path, rows)
    with pytest.raises(SourceError, match="2 sessions"):
        read_taq(path, symbol="X")
    first = read_taq(path, symbol="X", date="2024-01-02")
    assert first.size.tolist() == [1, 7] and first.date == "2024-01-02"
    second = read_taq(path, symbol="X", date="2024-01-03")
    assert second.size.tolist() == [2] and second.bid_price.tolist() == [110000]  # the book starts afresh
    with pytest.raises(SourceError, match="no rows on 2024-01-05"):
        read_taq(path, symbol="X", date="2024-01-05")


def test_symbol_column_and_other_column_order(tmp_path: Path) -> None:
    rows = [
        "AAA,BID,1,10.00,2024-01-02 09:30:00",
        "BBB,BID,1,20.00,2024-01-02 09:30:00",
        "AAA,ASK,3,10.01,2024-01-02 09:30:01",
        "BBB,ASK,4,20.01,2024-01-02 09:30:01",
    ]
    path = write(tmp_path, rows, header="Symbol,Type,Size,Price,Timestamp")
    bbb = read_taq(path, symbol="BBB")
    assert bbb.ask_price.tolist() == [200100] and bbb.ask_size.tolist() == [4] and bbb.bid_price.tolist() == [200000]
    with pytest.raises(UnknownSymbolError, match="no rows of symbol CCC; it has AAA, BBB"):
        read_taq(path, symbol="CCC")


def test_missing_column_and_no_complete_book(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="missing column size"):
        read_taq(write(tmp_path, ["2024-01-02 09:30:00,BID,10"], header="timestamp,type,price"), symbol="X")
    with pytest.raises(SourceError, match="both a bid and an ask"):
        read_taq(write(tmp_path, ["2024-01-02 09:30:00,BID,10,1", "2024-01-02 09:30:01,TRADE,10,1"]), symbol="X")
