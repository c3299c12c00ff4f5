"""Bad tick input is refused with a TickValidationError naming the file, the line and the reason.

Every case is a small hand-written file: a LOBSTER pair that is fine except for one line, or a
trades-and-quotes CSV (whose header is line 1).
"""

from __future__ import annotations

import dataclasses
import gzip
import zlib
from pathlib import Path

import numpy as np
import pytest
from tests.data.ticks.lobster_files import write_pair

from rltrade.data.ticks import (
    EVENT_COLUMNS,
    Events,
    TickValidationError,
    read_lobster,
    read_taq,
    synthetic_events,
    validate_events,
)
from rltrade.errors import DataValidationError

MESSAGES = [
    "34200.1,1,11,100,5800000,1",
    "34200.2,1,12,200,5801000,-1",
    "34200.3,4,11,40,5800000,1",
    "34200.4,3,12,200,5801000,-1",
]
BOOK = [
    "9999999999,0,5800000,100",
    "5801000,200,5800000,100",
    "5801000,200,5800000,60",
    "9999999999,0,5800000,60",
]


def refused(call: object, *args: object, **kwargs: object) -> TickValidationError:
    assert callable(call)
    with pytest.raises(TickValidationError) as info:
        call(*args, **kwargs)
    err = info.value
    assert isinstance(err, DataValidationError)
    assert "\n" not in str(err)
    return err


def lobster_refusal(tmp_path: Path, messages: list[str], book: list[str], **kw: bool) -> TickValidationError:
    return refused(read_lobster, write_pair(tmp_path, messages, book, **kw))


def with_line(lines: list[str], number: int, text: str) -> list[str]:
    """``lines`` with 1-based line ``number`` replaced by ``text``."""
    out = list(lines)
    out[number - 1] = text
    return out


def message_file(tmp_path: Path) -> str:
    return str(tmp_path / "TEST_2012-06-21_34200000_57600000_message_1.csv")


def book_file(tmp_path: Path) -> str:
    return str(tmp_path / "TEST_2012-06-21_34200000_57600000_orderbook_1.csv")


def test_the_good_pair_reads(tmp_path: Path) -> None:
    assert len(read_lobster(write_pair(tmp_path, MESSAGES, BOOK))) == 4


def test_row_counts_that_differ(tmp_path: Path) -> None:
    err = lobster_refusal(tmp_path, MESSAGES, BOOK[:3])
    assert (err.origin, err.line) == (book_file(tmp_path), 4)
    assert "message file has 4 rows but the orderbook file has 3" in err.reason
    assert str(err).startswith(f"{book_file(tmp_path)}, line 4: ")


def test_more_book_rows_than_messages(tmp_path: Path) -> None:
    err = lobster_refusal(tmp_path, MESSAGES[:2], BOOK)
    assert (err.origin, err.line) == (message_file(tmp_path), 3)


def test_time_going_backwards(tmp_path: Path) -> None:
    err = lobster_refusal(tmp_path, with_line(MESSAGES, 3, "34200.15,4,11,40,5800000,1"), BOOK)
    assert (err.origin, err.line) == (message_file(tmp_path), 3)
    assert "time goes backwards" in err.reason


def test_equal_times_are_fine(tmp_path: Path) -> None:
    same = with_line(MESSAGES, 3, "34200.2,4,11,40,5800000,1")
    assert len(read_lobster(write_pair(tmp_path, same, BOOK))) == 4


@pytest.mark.parametrize(("ask", "state"), [(5800000, "locked"), (5799900, "crossed")])
def test_crossed_or_locked_book(tmp_path: Path, ask: int, state: str) -> None:
    err = lobster_refusal(tmp_path, MESSAGES, with_line(BOOK, 3, f"{ask},200,5800000,60"))
    assert (err.origin, err.line) == (book_file(tmp_path), 3)
    assert err.reason == f"{state} book: ask {ask} <= bid 5800000"


@pytest.mark.parametrize(
    ("line", "text", "reason"),
    [
        (2, "34200.2,1,12,0,5801000,-1", "non-positive size 0"),
        (3, "34200.3,4,11,-40,5800000,1", "non-positive size -40"),
        (2, "34200.2,1,12,200,0,-1", "non-positive price 0"),
        (2, "34200.2,1,12,200,-5801000,-1", "non-positive price -5801000"),
        (2, "34200.2,6,12,200,5801000,-1", "unknown event type 6"),
        (4, "34200.4,9,12,200,5801000,-1", "unknown event type 9"),
        (2, "34200.2,1,12,200,5801000,0", "direction 0"),
        (2, "34200.2,1.5,12,200,5801000,-1", "'type' 1.5 is not a whole number"),
        (3, "34200.3,4,11,abc,5800000,1", "'size': 'abc' is not a number"),
        (3, "34200.3,4,11,,5800000,1", "'size': empty field"),
        (2, "34200.2,1,12,200,5801000", "5 fields; expected 6"),
        (4, "34200.4,3,12,200,5801000,-1,7", "7 fields; expected 6"),
        (3, "", "empty line"),
    ],
)
def test_bad_message_lines(tmp_path: Path, line: int, text: str, reason: str) -> None:
    err = lobster_refusal(tmp_path, with_line(MESSAGES, line, text), BOOK)
    assert (err.origin, err.line) == (message_file(tmp_path), line)
    assert reason in err.reason


@pytest.mark.parametrize(
    ("line", "text", "reason"),
    [
        (2, "5801000,200,5800000", "3 fields; expected 4"),
        (3, "5801000,x,5800000,60", "'ask size': 'x' is not a number"),
        (3, "5801000,-5,5800000,60", "negative ask size"),
        (3, "5801000,0,5800000,60", "ask size 0 at price 5801000: an empty side carries the price 9999999999"),
        (3, "5801000,200,0,60", "bid price 0 with size 60"),
    ],
)
def test_bad_orderbook_lines(tmp_path: Path, line: int, text: str, reason: str) -> None:
    err = lobster_refusal(tmp_path, MESSAGES, with_line(BOOK, line, text))
    assert (err.origin, err.line) == (book_file(tmp_path), line)
    assert reason in err.reason


def test_orderbook_with_a_column_count_that_is_not_whole_levels(tmp_path: Path) -> None:
    err = lobster_refusal(tmp_path, MESSAGES, [f"{line},1" for line in BOOK])
    assert (err.origin, err.line) == (book_file(tmp_path), 1)
    assert err.reason == "5 fields; expected a multiple of 4"


def test_truncated_gzip(tmp_path: Path) -> None:
    """A gzip cut short is refused at the line where the data stop, after the lines that did arrive."""
    rng = np.random.default_rng(0)
    n = 20_000
    messages = [f"{34200 + i / 10:.9f},1,{i + 1},{rng.integers(1, 999)},{5800000 - i},1" for i in range(n)]
    book = [f"9999999999,0,{5800000 - i},10" for i in range(n)]
    msg = write_pair(tmp_path, messages, book, gz=True)
    whole = msg.read_bytes()
    msg.write_bytes(whole[: len(whole) // 2])
    err = lobster_refusal_file(msg)
    assert err.origin == str(msg)
    assert "truncated gzip" in err.reason
    arrived = zlib.decompressobj(wbits=31).decompress(whole[: len(whole) // 2])  # what a reader can get
    assert err.line == arrived.count(b"\n") + 1
    assert 1 < err.line < n


def lobster_refusal_file(msg: Path) -> TickValidationError:
    return refused(read_lobster, msg)


def test_corrupt_gzip(tmp_path: Path) -> None:
    msg = write_pair(tmp_path, MESSAGES * 50, BOOK * 50, gz=True)
    data = bytearray(msg.read_bytes())
    data[20:40] = bytes(20)  # overwrite compressed bytes just after the header
    msg.write_bytes(bytes(data))
    err = lobster_refusal_file(msg)
    assert err.origin == str(msg) and ("corrupt gzip" in err.reason or "truncated gzip" in err.reason)


@pytest.mark.parametrize("gz", [False, True])
def test_empty_file(tmp_path: Path, gz: bool) -> None:
    msg = write_pair(tmp_path, MESSAGES, BOOK, gz=gz)
    msg.write_bytes(gzip.compress(b"") if gz else b"")
    err = lobster_refusal_file(msg)
    assert (err.origin, err.line, err.reason) == (str(msg), 1, "the file is empty")


# ----------------------------------------------------------------------------- trades and quotes
TAQ = [
    "timestamp,type,price,size",
    "2024-01-02 09:30:00.000,BID,99.99,300",
    "2024-01-02 09:30:00.100,ASK,100.01,200",
    "2024-01-02 09:30:00.200,TRADE,100.01,100",
    "2024-01-02 09:30:00.300,ASK,100.02,400",
]


def taq_refusal(tmp_path: Path, lines: list[str]) -> TickValidationError:
    path = tmp_path / "taq.csv"
    path.write_text("\n".join(lines) + "\n")
    err = refused(read_taq, path, symbol="SYN")
    assert err.origin == str(path)
    return err


def test_the_good_taq_file_reads(tmp_path: Path) -> None:
    path = tmp_path / "taq.csv"
    path.write_text("\n".join(TAQ) + "\n")
    assert len(read_taq(path, symbol="SYN")) == 3  # the first row (bid only) is dropped


@pytest.mark.parametrize(
    ("line", "text", "reason"),
    [
        (3, "2024-01-02 09:30:00.100,QUOTE,100.01,200", "unknown event type 'QUOTE'"),
        (4, "2024-01-02 09:30:00.200,TRADE,0,100", "non-positive price 0.0"),
        (4, "2024-01-02 09:30:00.200,TRADE,-1.5,100", "non-positive price -1.5"),
        (4, "2024-01-02 09:30:00.200,TRADE,100.01,0", "non-positive size 0"),
        (4, "2024-01-02 09:30:00.200,TRADE,100.01,10.5", "'size' 10.5 is not a whole number"),
        (4, "2024-01-02 09:30:00.200,TRADE,ten,100", "'price': 'ten' is not a number"),
        (4, "2024-01-02 09:30:00.200,TRADE,,100", "'price': empty field"),
        (3, "2024-01-02 09:30:00.100,ASK,99.99,200", "locked book: ask 999900 <= bid 999900"),
        (5, "2024-01-02 09:30:00.300,ASK,99.98,400", "crossed book: ask 999800 <= bid 999900"),
        (4, "2024-01-02 09:29:59.000,TRADE,100.01,100", "time goes backwards"),
        (4, "yesterday,TRADE,100.01,100", "unparsable timestamp 'yesterday'"),
        (5, "2024-01-02 09:30:00.300,ASK,100.02", "3 fields; expected 4"),
        (2, "2024-01-02 09:30:00.000,BID,99.99,300,1", "5 fields; expected 4"),
        (2, "2024-01-02 09:30:00.000,BID,0.00001,300", "price 1e-05 rounds to 0"),
    ],
)
def test_bad_taq_lines(tmp_path: Path, line: int, text: str, reason: str) -> None:
    err = taq_refusal(tmp_path, with_line(TAQ, line, text))
    assert err.line == line
    assert reason in err.reason


def test_bad_rows_among_the_dropped_ones_are_refused_too(tmp_path: Path) -> None:
    err = taq_refusal(tmp_path, with_line(TAQ, 2, "2024-01-02 09:30:00.000,BID,99.99,-3"))
    assert (err.line, err.reason) == (2, "non-positive size -3")


def test_taq_header_only_and_empty(tmp_path: Path) -> None:
    assert taq_refusal(tmp_path, TAQ[:1]).line == 2
    path = tmp_path / "taq.csv"
    path.write_bytes(b"")
    err = refused(read_taq, path, symbol="SYN")
    assert (err.line, err.reason) == (1, "the file is empty")


# ----------------------------------------------------------------------------- event tables
@pytest.fixture(scope="module")
def good() -> Events:
    return synthetic_events(seconds=120, seed=5)


def test_table_checks_name_the_event(good: Events) -> None:
    events = good
    validate_events(events)
    size = events.size.copy()
    size[7] = 0
    err = refused(validate_events, dataclasses.replace(events, size=size))
    assert (err.line, err.reason) == (8, "non-positive size 0")
    assert str(err).startswith("events of SYN 2024-01-02, event 8: ")


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("kind", 10, None),  # a quote is a known kind
        ("kind", 6, "unknown event type 6"),
        ("side", 0, "side 0 (expected +1 bid or -1 ask)"),
        ("ask_size", 0, "ask size 0 at price"),
        ("bid_price", 0, "bid price 0 with size"),
    ],
)
def test_one_bad_value_in_a_table(good: Events, column: str, value: int, reason: str | None) -> None:
    events = good
    kind = events.kind
    i = int(np.flatnonzero(kind == 1)[3])  # a submission well inside the session
    arr = getattr(events, column).copy()
    arr[i] = value
    changed = dataclasses.replace(events, **{column: arr})
    if reason is None:
        validate_events(changed)
        return
    err = refused(validate_events, changed)
    assert err.line == i + 1 and reason in err.reason


def test_halts_carry_a_halt_state_and_an_execution_may_have_no_side(good: Events) -> None:
    events = good
    kind, price, side = events.kind.copy(), events.price.copy(), events.side.copy()
    ex = int(np.flatnonzero(kind == 4)[0])
    side[ex] = 0
    kind[5], price[5] = 7, 0
    validate_events(dataclasses.replace(events, kind=kind, price=price, side=side))
    price[5] = 2
    err = refused(validate_events, dataclasses.replace(events, kind=kind, price=price))
    assert err.line == 6 and "halt with price 2" in err.reason


def test_table_shape_and_dtype(good: Events) -> None:
    events = good
    err = refused(validate_events, dataclasses.replace(events, size=events.size.astype(float)))
    assert "dtype float64" in err.reason and err.line is None
    err = refused(validate_events, dataclasses.replace(events, price=events.price[:-1]))
    assert "'price' is not a 1-D array" in err.reason
    empty = dataclasses.replace(events, **{c: getattr(events, c)[:0] for c in EVENT_COLUMNS})
    assert refused(validate_events, empty).reason == "no events"
