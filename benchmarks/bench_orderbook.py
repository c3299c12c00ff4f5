"""Time the order-book replay, OrderBookEnv and Q-learning against hftbacktest and a numpy floor.

Data: the LOBSTER GOOG level-1 sample of 2012-06-21 when ``--lobster MESSAGE_FILE`` (or
``$LOBSTER_DIR``) points at it (free from lobsterdata.com; not shipped), and a synthetic session
ten times as long (:func:`rltrade.data.ticks.synthetic_events`, 65 h, seeded). Measured in the
same run, on the same events:

- rltrade: the replay quoting at the touch every N seconds with queue tracking, entirely in numba
  (:func:`rltrade.envs.orderbook.replay.quote_at_touch_loop`), plus the OFI/book features;
  ``OrderBookEnv.step`` driven from Python (random actions); one Q-learning training episode.
- hftbacktest 2.4.4 (numba/Rust, queue-position models), in its own virtualenv
  (``benchmarks/.venv-hftbacktest``, created on first use: it pins numpy < 2.3), quoting at the
  touch with the same interval from an ``@njit`` strategy and from plain Python
  (``benchmarks/orderbook_hftbacktest.py``).
- the floor: a vectorised numpy OFI pass over the events (cumulative sums and ``searchsorted``).

Each figure is the best of ``--repeats`` after a warm-up that compiles the numba code.

Run: ``python benchmarks/bench_orderbook.py [--lobster PATH] [--no-hftbacktest]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.agents.qlearning import QLearningAgent, collect_observations
from rltrade.data.ticks import read_lobster, synthetic_events
from rltrade.envs.orderbook import OrderBookEnv
from rltrade.envs.orderbook.replay import pack_events, quote_at_touch_loop
from rltrade.features.orderbook import orderbook_features

HERE = Path(__file__).resolve().parent
GOOG = "GOOG_2012-06-21_34200000_57600000_message_1.csv.gz"


def best(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: numba compiles or loads its cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def numpy_ofi(events: Any, times: np.ndarray, window_ns: int) -> np.ndarray:
    """The floor: OFI of every event (Cont, Kukanov & Stoikov) summed over a trailing window, vectorised."""
    bp, bq, ap, aq = events.bid_price, events.bid_size, events.ask_price, events.ask_size
    e = np.zeros(len(bp))
    e[1:] = (
        (bp[1:] >= bp[:-1]) * bq[1:]
        - (bp[1:] <= bp[:-1]) * bq[:-1]
        - (ap[1:] <= ap[:-1]) * aq[1:]
        + (ap[1:] >= ap[:-1]) * aq[:-1]
    )
    total = np.concatenate(([0.0], np.cumsum(e)))
    hi = np.searchsorted(events.ts, times, side="right")
    lo = np.searchsorted(events.ts, times - window_ns, side="right")
    return total[hi] - total[lo]


def measure(name: str, events: Any, interval: float, repeats: int) -> dict[str, Any]:
    interval_ns = int(interval * 1e9)
    n = len(events)
    packed = pack_events(events)  # once, like the env's constructor (hftbacktest's conversion is not timed either)
    pack = best(lambda: pack_events(events), 1)
    loop = best(lambda: quote_at_touch_loop(events, interval_ns, packed=packed), repeats)
    result = quote_at_touch_loop(events, interval_ns, packed=packed)
    times = np.arange(events.ts[0], events.ts[-1], interval_ns)
    features = best(lambda: orderbook_features(events, times), repeats)
    floor = best(lambda: numpy_ofi(events, times, 10_000_000_000), repeats)
    # the whole session, from the first whole second with a book to the last event
    open_ = pd.Timestamp(int(events.ts[0]), tz="UTC").tz_convert(events.tz).ceil("s") + pd.Timedelta(seconds=1)
    close = pd.Timestamp(int(events.ts[-1]), tz="UTC").tz_convert(events.tz).floor("s")
    if close - open_ > pd.Timedelta(hours=20):  # an env episode is one session of wall-clock time: its first 6.5 h
        close = open_ + pd.Timedelta(hours=6.5)
    env = OrderBookEnv(events, decision_interval=interval, start=f"{open_:%H:%M:%S}", end=f"{close:%H:%M:%S}")
    actions = np.random.default_rng(0).integers(0, 6, env.n_steps + 1)

    def episode() -> None:
        env.reset()
        for k in range(env.n_steps):
            env.step(int(actions[k]))

    step = best(episode, repeats)
    agent = QLearningAgent(env, seed=0, n_init=1)
    agent.fit_states(collect_observations(env, seed=0, max_steps=env.n_steps + 1))
    learn = best(lambda: agent.learn(env.n_steps, progress=False), repeats)
    return {
        "data": name,
        "events": n,
        "decisions": int(env.n_steps),
        "fills": len(result.fills) if hasattr(result.fills, "__len__") else result.fills,
        "replay_s": loop,
        "pack_s": pack,
        "replay_ev_s": n / loop,
        "replay_features_ev_s": n / (loop + features),
        "floor_ev_s": n / floor,
        "env_steps_s": env.n_steps / step,
        "episode_s": step,
        "qlearning_episode_s": learn,
    }


def hftbacktest(args: list[str], repeats: int) -> dict[str, Any] | None:
    sys.path.insert(0, str(HERE))
    from hftbacktest_venv import run_hftbacktest_benchmark

    try:
        return run_hftbacktest_benchmark([*args, "--repeats", str(repeats), "--intervals", "2"])
    except Exception as exc:
        print(f"hftbacktest skipped: {exc}", file=sys.stderr)
        return None


def save_npz(events: Any, path: Path) -> None:
    np.savez(
        path,
        **{k: getattr(events, k) for k in ("ts", "kind", "order_id", "size", "price", "side")},
        **{k: getattr(events, k) for k in ("ask_price", "ask_size", "bid_price", "bid_size")},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lobster", help="the GOOG message file (default: $LOBSTER_DIR/" + GOOG + ")")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between decisions")
    parser.add_argument("--no-hftbacktest", action="store_true")
    args = parser.parse_args()
    message = args.lobster or (os.path.join(os.environ["LOBSTER_DIR"], GOOG) if "LOBSTER_DIR" in os.environ else None)
    datasets: list[tuple[str, Any, list[str]]] = []
    tmp = Path(tempfile.mkdtemp())
    if message and Path(message).exists():
        goog = read_lobster(message)
        datasets.append(("GOOG 2012-06-21", goog, [message, message.replace("_message_", "_orderbook_")]))
    else:
        print("no LOBSTER file (--lobster or $LOBSTER_DIR): the GOOG rows are left out", file=sys.stderr)
    long_day = synthetic_events(seconds=10 * 23_400.0, seed=1)
    save_npz(long_day, tmp / "synthetic.npz")
    datasets.append(("synthetic, 10 sessions long", long_day, [str(tmp / "synthetic.npz")]))
    rows = []
    for name, events, hbt_args in datasets:
        row = measure(name, events, args.interval, args.repeats)
        hbt = None if args.no_hftbacktest else hftbacktest(hbt_args, args.repeats)
        variants = (hbt or {}).get("variants", {})
        njit = variants.get(f"njit_{args.interval:g}s", {})
        python = variants.get(f"python_{args.interval:g}s", {})
        row["hbt_ev_s"] = njit.get("messages_per_s", float("nan"))
        row["hbt_python_steps_s"] = python.get("steps_per_s", float("nan"))
        rows.append(row)
    print(f"\norder-book replay, quoting at the touch every {args.interval:g} s (best of {args.repeats})\n")
    header = (
        f"{'data':<28} {'events':>9} {'rltrade ev/s':>13} {'+features':>11} {'hftbt ev/s':>11} {'ratio':>6} "
        f"{'numpy floor':>12} {'env steps/s':>12} {'hftbt py/s':>11} {'ratio':>6} {'Q episode':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['data']:<28} {r['events']:>9,} {r['replay_ev_s'] / 1e6:>11.1f} M "
            f"{r['replay_features_ev_s'] / 1e6:>9.1f} M "
            f"{r['hbt_ev_s'] / 1e6:>9.2f} M {r['replay_features_ev_s'] / r['hbt_ev_s']:>5.1f}x "
            f"{r['floor_ev_s'] / 1e6:>10.1f} M {r['env_steps_s']:>12,.0f} {r['hbt_python_steps_s']:>11,.0f} "
            f"{r['env_steps_s'] / r['hbt_python_steps_s']:>5.1f}x {r['qlearning_episode_s']:>9.3f}s"
        )
    packing = ", ".join(f"{r['data']} {r['pack_s'] * 1e3:.0f} ms" for r in rows)
    print(
        "\nratio: rltrade (replay + queue tracking + features) over hftbacktest's njit loop; env steps/s over "
        "hftbacktest driven from Python one step per decision. Q episode: one Q-learning training episode "
        f"over the whole session, env stepping included. Packing the events (once per session; not in the "
        f"figures, as hftbacktest's data conversion is not): {packing}."
    )


if __name__ == "__main__":
    main()
