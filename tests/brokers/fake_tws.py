"""A small fake TWS / IB Gateway on 127.0.0.1: enough of the TWS socket protocol for ib_async.

It answers the handshake and the requests ``ib_async.IB.connect`` sends to synchronise
(positions, open orders, completed orders, account updates, executions), and places and
cancels stock orders of one paper account: a market order, or a marketable limit order, fills
at once at the symbol's price (or only ``partial`` of it, the rest staying open), a limit order
that is not marketable rests, and a buy whose notional exceeds the buying power is rejected with
error 201, as a real gateway does. Orders, executions, cash and positions outlive a connection,
so a client that reconnects (the same client id or another) sees what it did before.

The message layouts come from ``tests/fixtures/ib/tws_messages.txt`` (written from the TWS API
protocol as ib_async's decoder reads it at server version 178, the version announced here).

Not modelled: contract details (orders name a SMART/USD stock by symbol), market data, several
accounts (the account string is sent as is), a client id already in use (error 326),
gateway-to-IB connectivity (1100/1102), rejections other than buying power and unknown symbols,
order modification, timing (on-open and on-close orders fill at once like market and limit
orders; nothing expires at the close), the reqExecutions filter (every execution is sent),
account summaries and sub-account updates (unanswered), and a rejected order is forgotten: a
reconnecting client does not see it among the completed orders.

The server runs in a background thread with its own event loop (``start`` / ``stop``, or use
it as a context manager), so the test's thread is free to run ib_async's synchronous API.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVER_VERSION = 178
#: Order statuses after which an order no longer shows among the open orders.
FINAL = frozenset({"Filled", "Cancelled", "Inactive"})
LAYOUTS_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "ib" / "tws_messages.txt"


def read_layouts(path: Path = LAYOUTS_FILE) -> dict[str, tuple[int, list[tuple[str, str]]]]:
    """Message name -> (message id, [(field, default), ...]) from the layouts file."""
    layouts: dict[str, tuple[int, list[tuple[str, str]]]] = {}
    current: list[tuple[str, str]] = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        header = re.fullmatch(r"[<>] (\d+) (\w+)", line)
        if header:
            current = []
            layouts[header[2]] = (int(header[1]), current)
        else:
            for token in line.split():
                name, _, default = token.partition("=")
                current.append((name, default))
    return layouts


LAYOUTS = read_layouts()


def encode(name: str, **values: Any) -> bytes:
    """One framed message: the layout's fields, ``values`` over the defaults, NUL-terminated."""
    msg_id, layout = LAYOUTS[name]
    unknown = set(values) - {f for f, _ in layout}
    if unknown:
        raise KeyError(f"{name} has no field {sorted(unknown)}")
    fields = [str(msg_id)] + [_text(values.get(f, default)) for f, default in layout]
    return frame("".join(f + "\0" for f in fields).encode())


def decode(name: str, fields: list[str]) -> dict[str, str]:
    """A received message's fields (after its id) by the names of its layout."""
    return {f: v for (f, _), v in zip(LAYOUTS[name][1], fields[1:], strict=False)}


def con_id(symbol: str) -> int:
    """A stable contract id per symbol (ib_async keys positions and portfolio items by it)."""
    return zlib.crc32(symbol.encode()) % 10**8


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@dataclass
class FakeOrder:
    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    action: str  # BUY or SELL
    qty: float
    order_type: str  # MKT or LMT
    limit: float | None
    tif: str
    order_ref: str
    status: str = "Submitted"
    filled: float = 0.0
    avg_price: float = 0.0


@dataclass
class Session:
    """One client connection."""

    writer: asyncio.StreamWriter
    client_id: int = -1


@dataclass
class FakeTWS:
    """The gateway's state and scenario; ``placed`` counts the placeOrder messages received."""

    prices: dict[str, float] = field(default_factory=lambda: {"AAPL": 200.0, "MSFT": 400.0})
    cash: float = 100_000.0
    buying_power: float = 100_000.0
    account: str = "DU1234567"
    partial: float | None = None  # fraction of a marketable order filled at once (the rest rests)
    drop_on_place: bool = False  # record the order, fill it, then close the socket without a reply
    ignore: frozenset[int] = frozenset()  # ids of requests left unanswered (a gateway that hangs)
    positions: dict[str, list[float]] = field(default_factory=dict)  # symbol -> [qty, avg cost]
    orders: list[FakeOrder] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    placed: list[dict[str, str]] = field(default_factory=list)
    received: list[list[str]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-tws", daemon=True)
        self._server: asyncio.Server | None = None
        self._sessions: list[Session] = []
        self._next_id: dict[int, int] = {}

    # -- life cycle (called from the test's thread) -----------------------------------------
    def start(self) -> FakeTWS:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            await self._close_sessions()
            await self._server.wait_closed()

        self._call(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def drop(self) -> None:
        """Close every client connection (the gateway keeps listening and keeps its state)."""
        self._call(self._close_sessions())

    def __enter__(self) -> FakeTWS:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=5)

    async def _close_sessions(self) -> None:
        sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.writer.close()
        for session in sessions:
            with contextlib.suppress(OSError):
                await session.writer.wait_closed()

    # -- the connection ---------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(writer)
        self._sessions.append(session)
        try:
            if await reader.readexactly(4) != b"API\0":
                return
            low, high = map(int, re.findall(rb"\d+", await self._read(reader))[:2])
            if not low <= SERVER_VERSION <= high:
                return
            now = dt.datetime.now(dt.UTC).strftime("%Y%m%d %H:%M:%S UTC")
            writer.write(frame(f"{SERVER_VERSION}\0{now}\0".encode()))
            while True:
                fields = (await self._read(reader)).decode().split("\0")[:-1]
                self.received.append(fields)
                if int(fields[0]) in self.ignore:
                    continue
                answer = self._answer(session, fields)
                if self.drop_on_place and fields[0] == "3":
                    return  # the order is in, its fills are booked; the client hears nothing
                writer.write(b"".join(answer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if session in self._sessions:
                self._sessions.remove(session)
            writer.close()

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> bytes:
        (size,) = struct.unpack(">I", await reader.readexactly(4))
        return await reader.readexactly(size)

    def _answer(self, session: Session, fields: list[str]) -> list[bytes]:
        """The messages that answer one request, in the order a gateway sends them."""
        msg_id = int(fields[0])
        if msg_id == 71:  # startApi
            session.client_id = int(decode("startApi", fields)["clientId"])
            return [encode("managedAccounts", accounts=self.account), self._next_valid_id(session)]
        if msg_id == 8:  # reqIds
            return [self._next_valid_id(session)]
        if msg_id == 49:  # reqCurrentTime
            return [encode("currentTime", time=int(dt.datetime.now(dt.UTC).timestamp()))]
        if msg_id == 61:  # reqPositions
            return [*self._position_messages(), encode("positionEnd")]
        if msg_id in (5, 16):  # reqOpenOrders: this client's; reqAllOpenOrders: every client's
            mine = [
                o for o in self.orders if o.status not in FINAL and (msg_id == 16 or o.client_id == session.client_id)
            ]
            return [m for o in mine for m in (self._open_order(o), self._order_status(o))] + [encode("openOrderEnd")]
        if msg_id == 99:  # reqCompletedOrders
            done = [self._completed_order(o) for o in self.orders if o.status in FINAL]
            return [*done, encode("completedOrdersEnd")]
        if msg_id == 6:  # reqAccountUpdates
            return [*self._account_messages(), encode("accountDownloadEnd", account=self.account)]
        if msg_id == 7:  # reqExecutions (every client's, whatever the filter)
            req_id = decode("reqExecutions", fields)["reqId"]
            messages = [m for e in self.executions for m in self._execution(e, req_id)]
            return [*messages, encode("execDetailsEnd", reqId=req_id)]
        if msg_id == 3:
            return self._place(session, decode("placeOrder", fields))
        if msg_id == 4:
            return self._cancel(session, int(decode("cancelOrder", fields)["orderId"]))
        return []  # a request the fake does not know goes unanswered, as ib_async tolerates

    def _next_valid_id(self, session: Session) -> bytes:
        return encode("nextValidId", orderId=self._next_id.get(session.client_id, 1))

    # -- orders -----------------------------------------------------------------------------
    def _place(self, session: Session, f: dict[str, str]) -> list[bytes]:
        self.placed.append(f)
        order_id = int(f["orderId"])
        self._next_id[session.client_id] = max(self._next_id.get(session.client_id, 1), order_id + 1)
        symbol, qty = f["symbol"], float(f["totalQuantity"])
        price = self.prices.get(symbol)
        if price is None:
            return [
                encode(
                    "error",
                    reqId=order_id,
                    errorCode=200,
                    errorString="No security definition has been found for the request",
                )
            ]
        limit = float(f["lmtPrice"]) if f["orderType"] in ("LMT", "LOC") else None
        if f["action"] == "BUY" and qty * (limit or price) > self.buying_power:
            reason = (
                f"Order rejected - reason:Insufficient buying power ({self.buying_power:.2f} USD) for {qty:g} {symbol}"
            )
            return [encode("error", reqId=order_id, errorCode=201, errorString=reason)]
        order = FakeOrder(
            order_id,
            session.client_id,
            9000 + len(self.orders) + 1,
            symbol,
            f["action"],
            qty,
            f["orderType"],
            limit,
            f["tif"],
            f["orderRef"],
        )
        self.orders.append(order)
        out = [self._open_order(order), self._order_status(order)]
        buy = order.action == "BUY"
        if limit is None or (limit >= price if buy else limit <= price):
            shares = qty if self.partial is None else max(1.0, float(int(qty * self.partial)))
            out += self._fill(order, shares, price)
        return out

    def _fill(self, order: FakeOrder, shares: float, price: float) -> list[bytes]:
        order.avg_price = (order.avg_price * order.filled + price * shares) / (order.filled + shares)
        order.filled += shares
        order.status = "Filled" if order.filled >= order.qty else "Submitted"
        signed = shares if order.action == "BUY" else -shares
        commission = round(min(max(1.0, 0.005 * shares), 0.01 * shares * price), 2)  # IB fixed US pricing
        self.cash -= signed * price + commission
        held = self.positions.setdefault(order.symbol, [0.0, 0.0])
        if held[0] * signed >= 0:  # opening or adding: average the cost
            held[:] = [held[0] + signed, (held[0] * held[1] + signed * price) / (held[0] + signed)]
        elif abs(signed) <= abs(held[0]):  # reducing keeps the average cost of what is left
            held[0] += signed
        else:  # through zero: what is left was opened at this price
            held[:] = [held[0] + signed, price]
        execution = {
            "order": order,
            "execId": f"0000e1a2.{len(self.executions) + 1:08d}.01.01",
            "shares": shares,
            "price": price,
            "time": dt.datetime.now(dt.UTC).strftime("%Y%m%d %H:%M:%S UTC"),
            "commission": commission,
        }
        self.executions.append(execution)
        return [
            *self._execution(execution, -1),
            self._order_status(order),
            *self._position_messages(order.symbol),
            *self._account_messages(),
        ]

    def _cancel(self, session: Session, order_id: int) -> list[bytes]:
        for order in self.orders:
            if order.order_id == order_id and order.client_id == session.client_id and order.status not in FINAL:
                order.status = "Cancelled"
                return [
                    self._order_status(order),
                    encode("error", reqId=order_id, errorCode=202, errorString="Order Canceled - reason:"),
                ]
        text = f"OrderId {order_id} that needs to be cancelled is not found."
        return [encode("error", reqId=order_id, errorCode=10147, errorString=text)]

    def _order_fields(self, o: FakeOrder) -> dict[str, Any]:
        return {
            "conId": con_id(o.symbol),
            "symbol": o.symbol,
            "action": o.action,
            "totalQuantity": o.qty,
            "orderType": o.order_type,
            "lmtPrice": o.limit if o.limit is not None else "",
            "tif": o.tif,
            "account": self.account,
            "orderRef": o.order_ref,
            "permId": o.perm_id,
            "status": o.status,
        }

    def _open_order(self, o: FakeOrder) -> bytes:
        return encode("openOrder", orderId=o.order_id, clientId=o.client_id, **self._order_fields(o))

    def _completed_order(self, o: FakeOrder) -> bytes:
        return encode("completedOrder", filledQuantity=o.filled, **self._order_fields(o))

    def _order_status(self, o: FakeOrder) -> bytes:
        return encode(
            "orderStatus",
            orderId=o.order_id,
            status=o.status,
            filled=o.filled,
            remaining=o.qty - o.filled,
            avgFillPrice=o.avg_price,
            permId=o.perm_id,
            clientId=o.client_id,
            lastFillPrice=o.avg_price,
        )

    def _execution(self, e: dict[str, Any], req_id: int | str) -> list[bytes]:
        o: FakeOrder = e["order"]
        cum = sum(x["shares"] for x in self.executions[: self.executions.index(e) + 1] if x["order"] is o)
        detail = encode(
            "execDetails",
            reqId=req_id,
            orderId=o.order_id,
            conId=con_id(o.symbol),
            symbol=o.symbol,
            execId=e["execId"],
            time=e["time"],
            acctNumber=self.account,
            execExchange="NYSE",
            side="BOT" if o.action == "BUY" else "SLD",
            shares=e["shares"],
            price=e["price"],
            permId=o.perm_id,
            clientId=o.client_id,
            cumQty=cum,
            avgPrice=e["price"],
            orderRef=o.order_ref,
        )
        return [detail, encode("commissionReport", execId=e["execId"], commission=e["commission"])]

    # -- account ----------------------------------------------------------------------------
    def net_liquidation(self) -> float:
        return self.cash + sum(qty * self.prices[s] for s, (qty, _) in self.positions.items())

    def _position_messages(self, only: str | None = None) -> list[bytes]:
        return [
            encode("position", account=self.account, conId=con_id(s), symbol=s, position=qty, avgCost=cost)
            for s, (qty, cost) in self.positions.items()
            if only in (None, s)
        ]

    def _account_messages(self) -> list[bytes]:
        values = {
            "NetLiquidation": self.net_liquidation(),
            "TotalCashValue": self.cash,
            "BuyingPower": self.buying_power,
        }
        out = [
            encode("updateAccountValue", key=k, value=f"{v:.2f}", currency="USD", account=self.account)
            for k, v in values.items()
        ]
        for s, (qty, cost) in self.positions.items():
            price = self.prices[s]
            out.append(
                encode(
                    "updatePortfolio",
                    conId=con_id(s),
                    symbol=s,
                    position=qty,
                    marketPrice=price,
                    marketValue=qty * price,
                    averageCost=cost,
                    unrealizedPNL=qty * (price - cost),
                    realizedPNL=0,
                    account=self.account,
                )
            )
        return [*out, encode("updateAccountTime", time=dt.datetime.now(dt.UTC).strftime("%H:%M"))]
