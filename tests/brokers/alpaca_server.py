"""A stand-in for Alpaca's Trading API on 127.0.0.1, for driving alpaca-py's real ``TradingClient``.

A ``ThreadingHTTPServer`` on a free port answers the endpoints the Alpaca broker calls with
the response shapes of ``tests/fixtures/alpaca/`` and a small in-memory state machine on top:
orders keyed by id and by ``client_order_id`` (a second order with a known client id gets
Alpaca's 422), buying power reduced by open buy orders (a buy that costs more gets Alpaca's
403), fills the test makes with :meth:`AlpacaServer.fill` (order quantities and average price,
FILL activities, positions and cash follow), and cancels that, like Alpaca's, take effect
asynchronously (the first read after ``DELETE`` still says ``pending_cancel``).

Faults are injected per request (:meth:`AlpacaServer.fail`): answer with a status instead of
the real answer, optionally after processing the request (a 504 for an order that *was*
stored), or close the socket without answering (a lost connection).

Endpoints: ``GET /v2/account``, ``GET /v2/positions``, ``GET|POST /v2/orders``,
``GET /v2/orders:by_client_order_id``, ``GET|DELETE /v2/orders/{id}``,
``GET /v2/account/activities/FILL``. Anything else is a 404.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alpaca"
KEY_ID = "PKSTANDIN7Q2W9E4R6T1"
SECRET_KEY = "standin-secret-Zx81Lq0Vb5Nc3Mw7"
#: The server's clock starts here and moves one second per event (deterministic timestamps).
START = dt.datetime(2024, 6, 4, 13, 30, tzinfo=dt.UTC)
NEW_YORK = ZoneInfo("America/New_York")
FINAL = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})
#: Last prices of symbols the fixtures hold no position in (the positions give the others).
DEFAULT_PRICES = {"SPY": 530.0, "MSFT": 415.0}
_ORDER_PATH = re.compile(r"/v2/orders/([0-9a-fA-F-]{36})")

Reply = tuple[int | None, Any]  # status (None: close without answering), JSON body or text


def fixture(name: str) -> Any:
    """A fixture file of tests/fixtures/alpaca/ as parsed JSON."""
    return json.loads((FIXTURES / name).read_text())


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def num(x: float) -> str:
    """A number as Alpaca writes it: a string, no trailing zeros."""
    return format(round(x, 9), ".12g")


@dataclass
class Seen:
    """A request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int | None = 0


@dataclass
class Fault:
    """Answer the next ``remaining`` ``method path`` requests with ``status`` (None: close the socket).

    With ``apply`` the request is processed first (the order is stored) and only its answer is
    replaced; ``before`` runs just before the fault answers (e.g. to fill an order meanwhile).
    """

    method: str
    path: str
    status: int | None
    body: Any = ""
    apply: bool = False
    remaining: int = 1
    stall: float = 0.0
    before: Callable[[], object] | None = None


@dataclass
class AlpacaServer:
    """The stand-in: start it, point ``url_override`` at :attr:`url`, :meth:`close` it."""

    key_id: str = KEY_ID
    secret_key: str = SECRET_KEY
    seen: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.now = START
        self.errors: dict[str, dict[str, Any]] = fixture("errors.json")
        self.template_order: dict[str, Any] = fixture("order_accepted.json")
        self.account: dict[str, Any] = fixture("account.json")
        self.cash = float(self.account["cash"])
        self.positions: dict[str, dict[str, Any]] = {p["symbol"]: p for p in fixture("positions.json")}
        self.template_position = copy.deepcopy(next(iter(self.positions.values())))
        self.prices = {**DEFAULT_PRICES, **{s: float(p["current_price"]) for s, p in self.positions.items()}}
        self.orders: dict[str, dict[str, Any]] = {}
        self.by_client_id: dict[str, str] = {}
        for order in fixture("orders.json"):
            self._store(order)
        self.activities: list[dict[str, Any]] = fixture("activities_fill.json")
        self.asset_ids = {o["symbol"]: o["asset_id"] for o in [*self.orders.values(), *self.positions.values()]}
        self.pending_cancel_reads: dict[str, int] = {}
        self._ids = itertools.count(1)

        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body leave in two writes: without TCP_NODELAY each answer waits ~40 ms
            # for the client's delayed ACK
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload, stall = stand_in.handle(self.command, self.path, dict(self.headers.items()), raw)
                time.sleep(stall)
                if status is None:  # a lost connection: the socket closes with no answer
                    self.close_connection = True
                    return
                is_text = isinstance(payload, str)
                body = b"" if payload is None else (payload.encode() if is_text else json.dumps(payload).encode())
                try:
                    self.send_response(status)
                    if body:
                        self.send_header("Content-Type", "text/html" if is_text else "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True  # a stalled handler must not hold up close()
        self.thread = threading.Thread(target=partial(self.httpd.serve_forever, poll_interval=0.05), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ test controls

    def fail(
        self,
        method: str,
        path: str,
        status: int | None,
        body: Any = "",
        *,
        apply: bool = False,
        times: int = 1,
        stall: float = 0.0,
        before: Callable[[], object] | None = None,
    ) -> Fault:
        """Inject a fault for the next ``times`` requests to ``method path`` (see :class:`Fault`)."""
        fault = Fault(method, path, status, body, apply, times, stall, before)
        with self.lock:
            self.faults.append(fault)
        return fault

    def error(self, name: str, **fields: Any) -> tuple[int, Any]:
        """A recorded error answer of errors.json, with ``fields`` filled into its JSON body."""
        entry = self.errors[name]
        body = {**entry["json"], **fields} if "json" in entry else entry["text"]
        return entry["status"], body

    def order_by_client_id(self, client_order_id: str) -> dict[str, Any]:
        return self.orders[self.by_client_id[client_order_id]]

    def requests_to(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if (s.method, s.path) == (method, path)]

    def fill(self, client_order_id: str, qty: float, price: float) -> dict[str, Any]:
        """Execute ``qty`` shares of an open order at ``price``: order, activity, position and cash follow."""
        with self.lock:
            order = self.order_by_client_id(client_order_id)
            ordered, before = float(order["qty"]), float(order["filled_qty"])
            if order["status"] in FINAL or not 0 < qty <= ordered - before + 1e-9:
                raise ValueError(
                    f"cannot fill {qty} of order {client_order_id} ({order['status']}, {before}/{ordered})"
                )
            avg_before = float(order["filled_avg_price"] or 0.0)
            filled = before + qty
            done = abs(filled - ordered) < 1e-9
            now = self._tick()
            order.update(
                filled_qty=num(filled),
                filled_avg_price=num((avg_before * before + price * qty) / filled),
                status="filled" if done else "partially_filled",
                updated_at=iso(now),
                filled_at=iso(now) if done else None,
            )
            activity = {
                "id": f"{now.astimezone(NEW_YORK).strftime('%Y%m%d%H%M%S%f')[:-3]}::{uuid.uuid4()}",
                "account_id": self.account["id"],
                "activity_type": "FILL",
                "transaction_time": iso(now),
                "type": "fill" if done else "partial_fill",
                "price": num(price),
                "qty": num(qty),
                "side": order["side"],
                "symbol": order["symbol"],
                "leaves_qty": num(ordered - filled),
                "order_id": order["id"],
                "cum_qty": num(filled),
                "order_status": order["status"],
            }
            self.activities.append(activity)
            self._book(order["symbol"], qty if order["side"] == "buy" else -qty, price)
            return activity

    # ------------------------------------------------------------------ dispatch

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> tuple[int | None, Any, float]:
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        body = json.loads(raw) if raw else None
        seen = Seen(method, parts.path, query, headers, body)
        lower = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.seen.append(seen)
            if (lower.get("apca-api-key-id"), lower.get("apca-api-secret-key")) != (self.key_id, self.secret_key):
                seen.status, payload = self.error("unauthorized")
                return seen.status, payload, 0.0
            fault = next(
                (f for f in self.faults if f.remaining > 0 and (f.method, f.path) == (method, parts.path)), None
            )
            if fault is None or fault.apply:
                status, payload = self._route(method, parts.path, query, body)
            if fault is not None:
                fault.remaining -= 1
                if fault.before is not None:
                    fault.before()
                status, payload = fault.status, fault.body
            seen.status = status
            return status, payload, fault.stall if fault else 0.0

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        if (method, path) == ("GET", "/v2/account"):
            return 200, self._account()
        if (method, path) == ("GET", "/v2/positions"):
            return 200, list(self.positions.values())
        if (method, path) == ("GET", "/v2/orders"):
            return 200, self._list_orders(query)
        if (method, path) == ("POST", "/v2/orders"):
            return self._submit(body or {})
        if (method, path) == ("GET", "/v2/orders:by_client_order_id"):
            order_id = self.by_client_id.get(query.get("client_order_id", ""))
            return (200, self._read(order_id)) if order_id else self.error("order_not_found")
        match = _ORDER_PATH.fullmatch(path)
        if match and match.group(1) in self.orders:
            if method == "GET":
                return 200, self._read(match.group(1))
            if method == "DELETE":
                return self._cancel(match.group(1))
        if match:
            return self.error("order_not_found")
        if (method, path) == ("GET", "/v2/account/activities/FILL"):
            return 200, self._fills(query)
        return 404, {"message": "Not Found"}

    # ------------------------------------------------------------------ state

    def _tick(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now

    def _store(self, order: dict[str, Any]) -> None:
        self.orders[order["id"]] = order
        self.by_client_id[order["client_order_id"]] = order["id"]

    def _open_buy_cost(self) -> float:
        cost = 0.0
        for o in self.orders.values():
            if o["side"] == "buy" and o["status"] not in FINAL:
                price = float(o["limit_price"]) if o["limit_price"] is not None else self.prices[o["symbol"]]
                cost += (float(o["qty"]) - float(o["filled_qty"])) * price
        return cost

    def _account(self) -> dict[str, Any]:
        long_value = sum(float(p["market_value"]) for p in self.positions.values() if float(p["market_value"]) > 0)
        short_value = sum(float(p["market_value"]) for p in self.positions.values() if float(p["market_value"]) < 0)
        buying_power = num(self.cash - self._open_buy_cost())
        equity = num(self.cash + long_value + short_value)
        return {
            **self.account,
            "cash": num(self.cash),
            "equity": equity,
            "portfolio_value": equity,
            "long_market_value": num(long_value),
            "short_market_value": num(short_value),
            "buying_power": buying_power,
            "regt_buying_power": buying_power,
            "non_marginable_buying_power": buying_power,
            "options_buying_power": buying_power,
        }

    def _read(self, order_id: str) -> dict[str, Any]:
        """The order as a read sees it; a pending cancel completes after its first read."""
        order = self.orders[order_id]
        if order["status"] == "pending_cancel":
            if self.pending_cancel_reads.get(order_id, 0) > 0:
                self.pending_cancel_reads[order_id] -= 1
            else:
                now = iso(self._tick())
                order.update(status="canceled", canceled_at=now, updated_at=now)
        return copy.deepcopy(order)

    def _list_orders(self, query: dict[str, str]) -> list[dict[str, Any]]:
        wanted = query.get("status", "open")
        rows = [self._read(order_id) for order_id in self.orders]
        if wanted != "all":
            rows = [o for o in rows if (o["status"] in FINAL) == (wanted == "closed")]
        if "symbols" in query:
            rows = [o for o in rows if o["symbol"] in query["symbols"].split(",")]
        rows.sort(key=lambda o: o["submitted_at"], reverse=query.get("direction", "desc") == "desc")
        return rows[: int(query.get("limit", 50))]

    def _submit(self, body: dict[str, Any]) -> Reply:
        client_id = body.get("client_order_id") or str(uuid.uuid4())
        if client_id in self.by_client_id:
            return self.error("duplicate_client_order_id")
        symbol, side = str(body.get("symbol", "")).upper(), body.get("side")
        qty = float(body.get("qty") or 0)
        if qty <= 0:
            return self.error("qty_not_positive")
        if symbol not in self.prices:
            return self.error("asset_not_found", message=f'asset "{symbol}" not found')
        limit = body.get("limit_price")
        price = float(limit) if limit is not None else self.prices[symbol]
        if side == "buy" and qty * price > self.cash - self._open_buy_cost():
            buying_power = self.cash - self._open_buy_cost()
            return self.error("insufficient_buying_power", buying_power=num(buying_power), cost_basis=num(qty * price))
        held = float(self.positions[symbol]["qty"]) if symbol in self.positions else 0.0
        if side == "sell" and held > 0 and qty > held:  # Alpaca does not go from long to short in one order
            message = f"insufficient qty available for order (requested: {num(qty)}, available: {num(held)})"
            return self.error(
                "insufficient_qty", available=num(held), existing_qty=num(held), symbol=symbol, message=message
            )
        now = self._tick()
        order = copy.deepcopy(self.template_order)
        order.update(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"alpaca-stand-in/order/{next(self._ids)}")),
            client_order_id=client_id,
            created_at=iso(now),
            updated_at=iso(now),
            submitted_at=iso(now),
            asset_id=self.asset_ids.get(symbol, str(uuid.uuid5(uuid.NAMESPACE_URL, f"asset/{symbol}"))),
            symbol=symbol,
            qty=num(qty),
            side=side,
            type=body.get("type"),
            order_type=body.get("type"),
            position_intent=f"{side}_to_open" if held == 0 or (held > 0) == (side == "buy") else f"{side}_to_close",
            time_in_force=body.get("time_in_force"),
            limit_price=num(float(limit)) if limit is not None else None,
            status="accepted",
        )
        self._store(order)
        return 200, copy.deepcopy(order)

    def _cancel(self, order_id: str) -> Reply:
        order = self.orders[order_id]
        if order["status"] in FINAL:
            return self.error("not_cancelable")
        order.update(status="pending_cancel", updated_at=iso(self._tick()))
        self.pending_cancel_reads[order_id] = 1
        return 204, None

    def _fills(self, query: dict[str, str]) -> list[dict[str, Any]]:
        rows = sorted(self.activities, key=lambda a: a["transaction_time"])
        if "after" in query:
            after = parse_time(query["after"])
            rows = [a for a in rows if parse_time(a["transaction_time"]) > after]
        if query.get("direction", "desc") == "desc":
            rows.reverse()
        token = query.get("page_token")
        if token:
            ids = [a["id"] for a in rows]
            rows = rows[ids.index(token) + 1 :] if token in ids else []
        return rows[: int(query.get("page_size", 100))]

    def _book(self, symbol: str, delta: float, price: float) -> None:
        """A fill of ``delta`` signed shares at ``price``: position (average entry, marks) and cash."""
        self.cash -= delta * price
        self.prices[symbol] = price
        position = self.positions.get(symbol)
        held = float(position["qty"]) if position else 0.0
        avg = float(position["avg_entry_price"]) if position else 0.0
        new = held + delta
        if abs(new) < 1e-9:
            self.positions.pop(symbol, None)
            return
        if held == 0 or held * delta > 0:  # opening or adding: weighted entry price
            avg = (abs(held) * avg + abs(delta) * price) / abs(new)
        elif held * new < 0:  # crossed through zero: the remainder opened at this price
            avg = price
        if position is None:
            position = copy.deepcopy(self.template_position)
            position.update(symbol=symbol, asset_id=self.asset_ids.get(symbol, str(uuid.uuid4())))
            self.positions[symbol] = position
        market, cost = new * price, new * avg
        position.update(
            qty=num(new),
            qty_available=num(new),
            side="long" if new > 0 else "short",
            avg_entry_price=num(avg),
            cost_basis=num(cost),
            market_value=num(market),
            current_price=num(price),
            unrealized_pl=num(market - cost),
            unrealized_plpc=num((market - cost) / abs(cost)),
        )
