"""The yahoo and alpaca sources, driven offline through the real client libraries.

A real HTTP server on 127.0.0.1 replays recorded response bodies (tests/fixtures/recorded/):
it replaces the internet, never our code. alpaca-py is pointed at it with its own
``url_override``; yfinance, whose URLs are hard-coded, gets a curl_cffi session that sends each
``https://<host>/<path>`` request to ``http://127.0.0.1:<port>/<host>/<path>`` instead, so all of
yfinance (cookie, crumb, timezone probe, chart request, its own error handling) runs unchanged.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest
from curl_cffi import requests as curl_requests

from rltrade.data.schema import CANONICAL_COLUMNS
from rltrade.data.sources._http import RetryPolicy, retry_call
from rltrade.data.sources.alpaca import fetch_alpaca
from rltrade.data.sources.yahoo import fetch_yahoo
from rltrade.errors import NetworkUnavailableError, SourceError, UnknownSymbolError

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"
NEW_YORK = "America/New_York"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
OFFLINE_DEADLINE_S = 10.0  # a guard against hanging in backoff, not a benchmark


# --------------------------------------------------------------------------- replay server


Reply = tuple[int, dict[str, str], bytes, float]  # status, headers, body, stall seconds


@dataclass
class Interaction:
    """One recorded request/response pair (a file of tests/fixtures/recorded/)."""

    method: str
    host: str
    path: str
    match_query: dict[str, str | None]
    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def load(cls, path: Path) -> Interaction:
        doc = json.loads(path.read_text())
        url = urlsplit(doc["request"]["url"])
        response = doc["response"]
        body = json.dumps(response["json"]).encode() if "json" in response else response["text"].encode()
        return cls(
            doc["request"]["method"],
            url.hostname or "",
            url.path or "/",
            doc["request"]["match_query"],
            response["status"],
            response["headers"],
            body,
        )

    def matches(self, method: str, host: str, path: str, query: dict[str, str]) -> bool:
        if (method, host, path) != (self.method, self.host, self.path):
            return False
        for key, want in self.match_query.items():
            if (want is None and key in query) or (want is not None and query.get(key) != want):
                return False
        return True


@dataclass
class Seen:
    """A request the server received."""

    method: str
    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0


@dataclass
class InjectedFailure:
    """Answer the next ``remaining`` requests that satisfy ``when`` with ``status``."""

    when: Callable[[Seen], bool]
    status: int
    body: bytes
    remaining: int
    stall: float = 0.0  # seconds to wait before answering


@dataclass
class ReplayServer:
    """A ThreadingHTTPServer on 127.0.0.1 answering from recorded interactions."""

    interactions: list[Interaction]
    default_host: str
    seen: list[Seen] = field(default_factory=list)
    failures: list[InjectedFailure] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, headers, body, stall = replay.answer("GET", self.path, dict(self.headers.items()))
                time.sleep(stall)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve = partial(self.httpd.serve_forever, poll_interval=0.05)
        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, method: str, raw_path: str, headers: dict[str, str]) -> Reply:
        parts = urlsplit(raw_path)
        path = parts.path
        first, _, rest = path.lstrip("/").partition("/")
        host = self.default_host
        if "." in first:  # /<host>/<path>: a request redirected by RedirectingSession
            host, path = first, "/" + rest
        seen = Seen(method, host, path, dict(parse_qsl(parts.query, keep_blank_values=True)), headers)
        with self.lock:
            self.seen.append(seen)
            for failure in self.failures:
                if failure.remaining > 0 and failure.when(seen):
                    failure.remaining -= 1
                    seen.status = failure.status
                    return failure.status, {"Content-Type": "text/plain"}, failure.body, failure.stall
        for interaction in self.interactions:
            if interaction.matches(method, host, path, seen.query):
                seen.status = interaction.status
                return interaction.status, interaction.headers, interaction.body, 0.0
        seen.status = 404
        missing = f"no recorded response for {method} {host}{path}".encode()
        return 404, {"Content-Type": "text/plain"}, missing, 0.0

    def fail_next(
        self, times: int, status: int, body: str, when: Callable[[Seen], bool], stall: float = 0.0
    ) -> InjectedFailure:
        failure = InjectedFailure(when, status, body.encode(), times, stall)
        self.failures.append(failure)
        return failure

    def requests_to(self, path: str, *, with_param: str | None = None) -> list[Seen]:
        return [s for s in self.seen if s.path == path and (with_param is None or with_param in s.query)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def load_interactions(folder: str) -> list[Interaction]:
    return [Interaction.load(p) for p in sorted((RECORDED / folder).glob("*.json"))]


def recorded_json(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())["response"]["json"]


def closed_port_url() -> str:
    """A 127.0.0.1 URL nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not capture requests meant for 127.0.0.1."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


# --------------------------------------------------------------------------- yfinance plumbing


class RedirectingSession(curl_requests.Session):
    """A curl_cffi session (yfinance's own kind) sending https://HOST/PATH to BASE/HOST/PATH."""

    def __init__(self, base_url: str) -> None:
        super().__init__(impersonate="chrome")
        self.base_url = base_url

    def request(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        query = f"?{parts.query}" if parts.query else ""
        target = f"{self.base_url}/{parts.hostname}{parts.path or '/'}{query}"
        return super().request(method, target, *args, **kwargs)


@pytest.fixture(scope="module")
def _yfinance_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """yfinance keeps timezone/cookie caches on disk: keep them out of the user's home."""
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path_factory.mktemp("yfinance-cache")))


@contextmanager
def yahoo_redirected_to(base_url: str) -> Iterator[None]:
    """Give yfinance's (singleton) data client a fresh state and a RedirectingSession."""
    from yfinance.data import SingletonMeta, YfData

    def reset() -> None:
        SingletonMeta._instances.pop(YfData, None)
        YfData.cache_get.cache_clear()

    reset()
    YfData(session=RedirectingSession(base_url))
    try:
        yield
    finally:
        reset()


@pytest.fixture
def yahoo_server(_yfinance_cache_dir: None) -> Iterator[ReplayServer]:
    server = ReplayServer(load_interactions("yahoo"), default_host="query2.finance.yahoo.com")
    with yahoo_redirected_to(server.url):
        yield server
    server.close()


def chart_expectation(name: str, *, daily: bool) -> pd.DataFrame:
    """What the canonical frame must hold, computed from the recorded chart body alone."""
    result = recorded_json(name)["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    stamps = pd.to_datetime(result["timestamp"], unit="s", utc=True)
    if daily:  # session date in New York, stamped 00:00 UTC
        stamps = stamps.tz_convert(NEW_YORK).tz_localize(None).normalize().tz_localize("UTC")
    indicators = result["indicators"]
    adj = indicators["adjclose"][0]["adjclose"] if "adjclose" in indicators else quote["close"]
    return pd.DataFrame(
        {
            "timestamp": stamps,
            "open": quote["open"],
            "high": quote["high"],
            "low": quote["low"],
            "close": quote["close"],
            "volume": quote["volume"],
            "adj_close": adj,
        }
    )


def assert_frame_matches(frame: pd.DataFrame, expected: pd.DataFrame, symbol: str) -> None:
    assert (frame["symbol"] == symbol).all()
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique
    assert list(frame["timestamp"]) == list(expected["timestamp"])
    for column in expected.columns.drop("timestamp"):
        want = expected[column].to_numpy(dtype=float)
        assert frame[column].to_numpy() == pytest.approx(want, rel=1e-9), column


# --------------------------------------------------------------------------- yahoo


def test_yahoo_daily_bars_round_trip_two_symbols(yahoo_server: ReplayServer) -> None:
    bars = fetch_yahoo(["spy", "BA"], "2020-05-08", "2020-08-12", "1d", retry=FAST_RETRY)

    assert [b.symbols for b in bars] == [["SPY"], ["BA"]]
    for raw, symbol in zip(bars, ("SPY", "BA"), strict=True):
        assert (raw.origin, raw.freq, raw.adjusted, raw.close_only) == ("yahoo", "1d", False, False)
        assert list(raw.frame.columns) == [*CANONICAL_COLUMNS, "adj_close"]
        assert (raw.frame["timestamp"].dt.hour == 0).all()
        expected = chart_expectation(f"yahoo/chart_{symbol}_1d.json", daily=True)
        assert_frame_matches(raw.frame, expected, symbol)
    spy = bars[0].frame
    # Raw prices, Yahoo's adjusted close alongside: SPY went ex-dividend on 2020-06-19.
    assert (spy["adj_close"].iloc[:-1] < spy["close"].iloc[:-1]).all()
    assert spy["adj_close"].iloc[-1] == spy["close"].iloc[-1]
    assert spy["timestamp"].iloc[0] == pd.Timestamp("2020-05-08", tz="UTC")
    # The window reached Yahoo as [start, end + 1 day) in exchange time, at daily granularity.
    (history,) = yahoo_server.requests_to("/v8/finance/chart/SPY", with_param="period1")
    assert history.query["interval"] == "1d"
    assert int(history.query["period1"]) == pd.Timestamp("2020-05-08", tz=NEW_YORK).timestamp()
    assert int(history.query["period2"]) == pd.Timestamp("2020-08-13", tz=NEW_YORK).timestamp()


def test_yahoo_minute_bars_keep_utc_start_times(yahoo_server: ReplayServer) -> None:
    (raw,) = fetch_yahoo(["GOOG"], "2012-06-21", "2012-06-21", "1min", retry=FAST_RETRY)

    assert raw.freq == "1min"
    assert_frame_matches(raw.frame, chart_expectation("yahoo/chart_GOOG_1m.json", daily=False), "GOOG")
    assert raw.frame["timestamp"].iloc[0] == pd.Timestamp("2012-06-21 13:30", tz="UTC")  # 09:30 New York
    (history,) = yahoo_server.requests_to("/v8/finance/chart/GOOG", with_param="period1")
    assert history.query["interval"] == "1m"


def test_yahoo_unknown_symbol_is_named(yahoo_server: ReplayServer) -> None:
    # Three times: yfinance first looks the symbol up in quoteSummary (404), later only
    # reports a missing timezone; both must come out as UnknownSymbolError.
    for _ in range(3):
        with pytest.raises(UnknownSymbolError, match="NOTAREALSYM"):
            fetch_yahoo(["SPY", "NOTAREALSYM"], "2020-05-08", "2020-06-19", "1d", retry=FAST_RETRY)
    assert yahoo_server.requests_to("/v8/finance/chart/NOTAREALSYM")  # it was asked, not guessed


def test_yahoo_rate_limit_then_success_is_retried(yahoo_server: ReplayServer) -> None:
    # yfinance retries a 4xx/5xx once by itself (switching cookie strategy), so two 429s in a row
    # reach our code as YFRateLimitError; the third request succeeds.
    def is_spy_history(s: Seen) -> bool:
        return s.path == "/v8/finance/chart/SPY" and "period1" in s.query

    failure = yahoo_server.fail_next(2, 429, "Too Many Requests", when=is_spy_history)

    (raw,) = fetch_yahoo(["SPY"], "2020-05-08", "2020-06-19", "1d", retry=FAST_RETRY)

    assert failure.remaining == 0
    assert [s.status for s in yahoo_server.seen if is_spy_history(s)] == [429, 429, 200]
    assert len(raw.frame) == 30


def test_yahoo_server_error_page_then_success_is_retried(yahoo_server: ReplayServer) -> None:
    # Two 500s with an HTML body: yfinance hands the second one over as a response (and memoises
    # it, the window being in the past), so parsing fails; the retry must ask Yahoo again.
    def is_spy_history(s: Seen) -> bool:
        return s.path == "/v8/finance/chart/SPY" and "period1" in s.query

    page = "<html><body><h1>500 Internal Server Error</h1></body></html>"
    failure = yahoo_server.fail_next(2, 500, page, when=is_spy_history)

    (raw,) = fetch_yahoo(["SPY"], "2020-05-08", "2020-06-19", "1d", retry=FAST_RETRY)

    assert failure.remaining == 0
    assert [s.status for s in yahoo_server.seen if is_spy_history(s)] == [500, 500, 200]
    assert len(raw.frame) == 30


def test_yahoo_rate_limit_gives_up_after_the_attempts(yahoo_server: ReplayServer) -> None:
    yahoo_server.fail_next(99, 429, "Too Many Requests", when=lambda s: "period1" in s.query)

    with pytest.raises(SourceError, match=r"kept failing after 2 attempts"):
        fetch_yahoo(["SPY"], "2020-05-08", "2020-06-19", "1d", retry=RetryPolicy(attempts=2, base_delay=0.01))


@pytest.mark.parametrize("target", ["closed-port", "unresolvable-host"])
def test_yahoo_offline_raises_network_unavailable_quickly(_yfinance_cache_dir: None, target: str) -> None:
    base = closed_port_url() if target == "closed-port" else "http://nonexistent.invalid"
    began = time.monotonic()
    with yahoo_redirected_to(base), pytest.raises(NetworkUnavailableError) as info:
        fetch_yahoo(["MSFT"], "2020-05-08", "2020-06-19", "1d")  # default retry policy
    assert time.monotonic() - began < OFFLINE_DEADLINE_S
    message = str(info.value)
    assert "the network is unreachable" in message
    assert "query2.finance.yahoo.com" in message
    assert "file/sample source" in message


# --------------------------------------------------------------------------- alpaca


@pytest.fixture
def alpaca_keys(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("ALPACA_API_KEY", "PKTESTKEY0000000000")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "test-secret")
    return "PKTESTKEY0000000000", "test-secret"


@pytest.fixture
def alpaca_server() -> Iterator[ReplayServer]:
    server = ReplayServer(load_interactions("alpaca"), default_host="data.alpaca.markets")
    yield server
    server.close()


def alpaca_expectation(names: list[str], symbol: str, *, daily: bool) -> pd.DataFrame:
    bars = [bar for name in names for bar in recorded_json(name)["bars"].get(symbol, [])]
    stamps = pd.to_datetime([bar["t"] for bar in bars], utc=True)
    if daily:  # Alpaca stamps daily bars at midnight New York
        stamps = stamps.tz_convert(NEW_YORK).tz_localize(None).normalize().tz_localize("UTC")
    return pd.DataFrame(
        {
            "timestamp": stamps,
            **{col: [bar[col[0]] for bar in bars] for col in ("open", "high", "low", "close", "volume")},
        }
    )


DAILY_PAGES = ["alpaca/bars_BA_CRM_1Day_page1.json", "alpaca/bars_BA_CRM_1Day_page2.json"]


Keys = tuple[str, str]


def test_alpaca_daily_bars_round_trip_two_symbols(alpaca_server: ReplayServer, alpaca_keys: Keys) -> None:
    bars = fetch_alpaca(["BA", "crm"], "2020-07-01", "2020-08-12", "1d", url_override=alpaca_server.url)

    assert [b.symbols for b in bars] == [["BA"], ["CRM"]]
    for raw in bars:
        assert (raw.origin, raw.freq, raw.adjusted, raw.close_only) == ("alpaca", "1d", True, False)
        assert list(raw.frame.columns) == list(CANONICAL_COLUMNS)
        assert (raw.frame["timestamp"].dt.hour == 0).all()
        symbol = raw.symbols[0]
        assert_frame_matches(raw.frame, alpaca_expectation(DAILY_PAGES, symbol, daily=True), symbol)
        assert len(raw.frame) == 30
    first = alpaca_server.seen[0]
    assert first.path == "/v2/stocks/bars"
    assert first.headers["APCA-API-KEY-ID"] == alpaca_keys[0]
    assert first.headers["APCA-API-SECRET-KEY"] == alpaca_keys[1]
    assert first.query["adjustment"] == "all"
    assert first.query["timeframe"] == "1Day"
    assert pd.Timestamp(first.query["start"]) == pd.Timestamp("2020-07-01", tz="UTC")
    assert pd.Timestamp(first.query["end"]) == pd.Timestamp("2020-08-13", tz="UTC")  # end day is inclusive


def test_alpaca_follows_next_page_token(alpaca_server: ReplayServer, alpaca_keys: Keys) -> None:
    bars = fetch_alpaca(["BA", "CRM"], "2020-07-01", "2020-08-12", "1d", url_override=alpaca_server.url)

    token = recorded_json(DAILY_PAGES[0])["next_page_token"]
    assert [s.query.get("page_token") for s in alpaca_server.seen] == [None, token]
    crm = next(b.frame for b in bars if b.symbols == ["CRM"])
    page1_crm = len(recorded_json(DAILY_PAGES[0])["bars"]["CRM"])
    page2_crm = len(recorded_json(DAILY_PAGES[1])["bars"]["CRM"])
    assert page1_crm and page2_crm and len(crm) == page1_crm + page2_crm


def test_alpaca_minute_bars(alpaca_server: ReplayServer, alpaca_keys: Keys) -> None:
    (raw,) = fetch_alpaca(["GOOG"], "2012-06-21", "2012-06-21", "1min", url_override=alpaca_server.url)

    assert raw.freq == "1min"
    expected = alpaca_expectation(["alpaca/bars_GOOG_1Min.json"], "GOOG", daily=False)
    assert_frame_matches(raw.frame, expected, "GOOG")
    assert raw.frame["timestamp"].iloc[0] == pd.Timestamp("2012-06-21 13:30", tz="UTC")
    assert alpaca_server.seen[0].query["timeframe"] == "1Min"


def test_alpaca_unknown_symbol_is_named(alpaca_server: ReplayServer, alpaca_keys: Keys) -> None:
    with pytest.raises(UnknownSymbolError, match="NOTAREALSYM"):
        fetch_alpaca(["NOTAREALSYM"], "2020-07-01", "2020-08-12", "1d", url_override=alpaca_server.url)


def test_alpaca_server_error_then_success_is_retried(alpaca_server: ReplayServer, alpaca_keys: Keys) -> None:
    failure = alpaca_server.fail_next(
        1, 500, '{"code":50010000,"message":"internal server error occurred"}', when=lambda s: True
    )

    bars = fetch_alpaca(
        ["BA", "CRM"], "2020-07-01", "2020-08-12", "1d", url_override=alpaca_server.url, retry=FAST_RETRY
    )

    assert failure.remaining == 0
    assert [s.status for s in alpaca_server.seen] == [500, 200, 200]  # failed, then both pages
    assert sum(len(b.frame) for b in bars) == 60


def test_alpaca_stalled_response_is_retried(alpaca_server: ReplayServer, alpaca_keys: Keys) -> None:
    # Answered after 1.5 s with a non-retryable 400: only a client that gave up waiting succeeds.
    too_late = '{"code":40010000,"message":"too late"}'
    failure = alpaca_server.fail_next(1, 400, too_late, when=lambda s: True, stall=1.5)
    url = alpaca_server.url

    bars = fetch_alpaca(
        ["BA", "CRM"], "2020-07-01", "2020-08-12", "1d", url_override=url, retry=FAST_RETRY, timeout=0.3
    )

    assert failure.remaining == 0
    assert len(alpaca_server.seen) == 3  # the stalled request, then both pages
    assert sum(len(b.frame) for b in bars) == 60


@pytest.mark.parametrize("target", ["closed-port", "unresolvable-host"])
def test_alpaca_offline_raises_network_unavailable_quickly(alpaca_keys: Keys, target: str) -> None:
    url = closed_port_url() if target == "closed-port" else "http://nonexistent.invalid"
    began = time.monotonic()
    with pytest.raises(NetworkUnavailableError) as info:
        fetch_alpaca(["BA"], "2020-07-01", "2020-08-12", "1d", url_override=url)  # default retry policy
    assert time.monotonic() - began < OFFLINE_DEADLINE_S
    message = str(info.value)
    assert "the network is unreachable" in message
    assert urlsplit(url).netloc in message


@pytest.mark.usefixtures("alpaca_keys")
@pytest.mark.parametrize("missing", ["ALPACA_API_KEY", "ALPACA_SECRET_KEY"])
def test_alpaca_missing_keys_are_named(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    monkeypatch.delenv(missing)
    assert missing not in os.environ
    # A closed port: had the source gone to the network, the error would be a different one.
    with pytest.raises(SourceError, match=missing) as info:
        fetch_alpaca(["BA"], "2020-07-01", "2020-08-12", "1d", url_override=closed_port_url())
    assert not isinstance(info.value, NetworkUnavailableError)


# --------------------------------------------------------------------------- retry helper


def test_retry_call_retries_a_reset_connection_then_returns() -> None:
    calls: list[int] = []
    waits: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError(104, "Connection reset by peer")
        return "ok"

    policy = RetryPolicy(attempts=3, base_delay=0.5, max_delay=0.75)
    assert retry_call(flaky, what="test", host="example.test", policy=policy, sleep=waits.append) == "ok"
    assert len(calls) == 3
    assert waits == [0.5, 0.75]  # doubled, then capped
