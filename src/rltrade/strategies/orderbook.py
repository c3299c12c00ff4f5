"""``strategy: orderbook``: seed 003 done honestly: tabular Q-learning on a level-I replay against a random agent.

One session of events (:mod:`rltrade.data.ticks`) is cut into three windows of exchange time
(:class:`~rltrade.config.OrderBookConfig`): the state scalers and k-means clusters are fitted on
the ``fit`` window's observations (a pass that sends no orders), the agent learns over
``agent.episodes`` episodes of the ``train`` window, and is then scored on the later, disjoint
``test`` window, greedily. The random agent trades the same test window with the same action
space; buy-and-hold buys ``order_size`` shares at the test window's first decision and is
flattened with the others at its end. Each of ``evaluation.runs`` runs (seeds) trains a new
agent and draws a new random agent; a one-sided Welch t-test asks whether the learning agent's
final P&L is larger than the random agent's.

Written to the run directory: ``config.yaml``, ``manifest.json``, ``metrics.json`` (final P&L per
agent: mean, std, min, max, the t-test), ``pnl.csv`` (mark-to-mid P&L per decision of the test
window and run), ``positions.csv``, ``fills.csv`` (the first run's fills), ``policy.csv`` (the
first run's greedy action and visits per state), ``models/seed_<s>.npz`` and ``report.html``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rltrade.config import AnyConfig, ConfigError, OrderBookConfig
from rltrade.config.orderbook import QLearningAgentConfig, SessionWindow
from rltrade.runs.files import git_commit, versions
from rltrade.runs.manifest import new_run_dir
from rltrade.shared.files import write_csv, write_json, write_text

log = logging.getLogger(__name__)

#: The synthetic session's date and symbol when the config names none.
SYNTHETIC_DATE, SYNTHETIC_SYMBOL = "2024-01-02", "SYN"


@dataclass(frozen=True)
class OrderBookResult:
    """What an order-book run leaves behind: its folder and the final-P&L table (prints formatted)."""

    run_dir: Path
    metrics: dict[str, Any]

    @property
    def table(self) -> pd.DataFrame:
        """Final P&L of the test window per agent over the runs: mean, std, min, max (currency)."""
        rows = {name: self.metrics["agents"][name] for name in self.metrics["agents"]}
        return pd.DataFrame(rows).T[["runs", "mean", "std", "min", "max"]]

    def __str__(self) -> str:
        welch = self.metrics["welch"]
        return (
            f"{self.run_dir}\nfinal P&L of the test window\n{self.table.round(2)}\n"
            f"Welch t-test, qlearning > random (one-sided): t = {welch['t']:.2f}, p = {welch['p']:.3g}"
        )


def load_session(config: OrderBookConfig) -> Any:
    """The session's :class:`~rltrade.data.ticks.Events`.

    ``synthetic:[SEED]`` is generated (seeded, offline). ``lobster:`` and ``taq:`` files are read
    and validated, and ingested into the tick store when it does not hold the session yet (as
    ``rltrade data ingest`` would), so later tools find it there.
    """
    from rltrade.data.ticks import TickStore, read_lobster, read_taq, synthetic_events

    data = config.data
    kind, _, arg = data.source.partition(":")
    if kind == "synthetic":
        return synthetic_events(
            seconds=data.synthetic_hours * 3600.0,
            seed=int(arg) if arg else 0,
            symbol=data.symbol or SYNTHETIC_SYMBOL,
            date=str(data.date or SYNTHETIC_DATE),
        )
    if "$" in arg:
        name = arg.split("$", 1)[1].strip("{").split("}")[0].split("/")[0]
        raise ConfigError(
            f"data.source {data.source}: the environment variable {name} is not set "
            f"(export {name}=the folder holding the files; README: order book)"
        )
    if "://" not in arg and not Path(arg).exists():
        raise ConfigError(f"data.source: {arg} does not exist")
    store = TickStore(data.store)
    date = str(data.date) if data.date else None
    if kind == "lobster":
        events = read_lobster(arg, data.orderbook, symbol=data.symbol, date=date)
    else:
        events = read_taq(arg, symbol=str(data.symbol), date=date)
    if (events.symbol, events.date) not in store.sessions(events.symbol):
        store.ingest(events, source=data.source)
        log.info("ingested %s %s (%d events) into %s", events.symbol, events.date, len(events), store.root)
    return events


def check_windows(config: OrderBookConfig, events: Any) -> None:
    """Refuse a window (``fit``, ``train``, ``test``) that reaches outside the session's events.

    A minute of slack at each end: a session's first and last events fall just inside its nominal
    hours (LOBSTER's GOOG sample ends at 15:59:59.3 for a 16:00 close).
    """
    slack = pd.Timedelta(minutes=1)
    first, last = (pd.Timestamp(int(t), tz="UTC").tz_convert(events.tz) for t in (events.ts[0], events.ts[-1]))
    first, last = first - slack, last + slack
    span = f"the session {events.symbol} {events.date} runs from {first:%H:%M:%S} to {last:%H:%M:%S} ({events.tz})"
    for name in ("fit", "train", "test"):
        window: SessionWindow = getattr(config, name)
        if window.start < first.time() or window.end > last.time():
            raise ConfigError(f"{name}: {window.start}..{window.end} reaches outside the data: {span}")


def make_env(events: Any, config: OrderBookConfig, window: SessionWindow) -> Any:
    """The :class:`~rltrade.envs.orderbook.OrderBookEnv` of ``config.env`` over ``window`` of the session."""
    from rltrade.envs.orderbook import OrderBookEnv

    env = config.env
    return OrderBookEnv(
        events,
        decision_interval=env.decision_interval,
        start=window.start,
        end=window.end,
        order_size=env.order_size,
        position_limit=env.position_limit,
        ticks_away=env.ticks_away,
        tick=env.tick,
        fee_per_share=env.fee_per_share,
        fee_per_order=env.fee_per_order,
        trailing_stop=env.trailing_stop,
        ofi_window=env.ofi_window,
        latency=env.latency,
        queue_model=env.queue_model,
        include_own_orders=env.include_own_orders,
    )


def play(env: Any, choose: Callable[[np.ndarray, int], int]) -> Any:
    """One episode of ``env`` with ``choose(observation, step) -> action``; the env's :meth:`history`."""
    obs, _ = env.reset()
    step, done = 0, False
    while not done:
        obs, _, done, truncated, _ = env.step(choose(obs, step))
        done = done or truncated
        step += 1
    return env.history()


def acting(agent: Any) -> Callable[[np.ndarray, int], int]:
    """``agent``'s action for an observation (greedy for a learner; a draw for the random agent)."""
    return lambda obs, _step: int(agent.predict(obs))


class OrderBookStrategy:
    """``strategy: orderbook`` (see the module docstring)."""

    def check(self, config: AnyConfig, source: str = "config") -> OrderBookConfig:
        """An order-book config (its fields were checked when it was parsed)."""
        if not isinstance(config, OrderBookConfig):
            raise ConfigError(f"{source}: strategy {config.strategy!r} is not the order-book strategy")
        return config

    def run(
        self,
        config: OrderBookConfig,
        runs_dir: str | Path = "runs",
        n_seeds: int = 1,
        *,
        progress: bool = True,
        on_stage: Callable[[str], None] | None = None,
        **options: Any,
    ) -> OrderBookResult:
        """Fit, train, test against the random agent and buy-and-hold, report. ``--seeds N`` > 1 overrides
        ``evaluation.runs``."""
        from tqdm.auto import tqdm

        from rltrade.agents.qlearning import QLearningAgent, collect_observations
        from rltrade.agents.random_agent import RandomAgent
        from rltrade.backtest.stats import welch_t_test
        from rltrade.envs.orderbook import ACTION_BUY, ACTION_NONE
        from rltrade.report.orderbook import write_orderbook_report

        if options:
            raise ConfigError(f"{', '.join(options)}: not an option of the order-book strategy")
        started = time.perf_counter()
        stage = on_stage or (lambda message: log.info("%s", message))
        runs = n_seeds if n_seeds > 1 else config.evaluation.runs
        seeds = [config.seed + i for i in range(runs)]
        stage("loading the session")
        events = load_session(config)
        check_windows(config, events)
        fit_env, train_env, test_env = (make_env(events, config, w) for w in (config.fit, config.train, config.test))
        fit_obs = collect_observations(fit_env, seed=config.seed, max_steps=fit_env.n_steps + 1, action=ACTION_NONE)
        run_dir = new_run_dir(config, runs_dir)
        (run_dir / "models").mkdir()
        pnl: dict[str, pd.Series] = {}
        positions: dict[str, pd.Series] = {}
        finals: dict[str, list[float]] = {"qlearning": [], "random": []}
        first: dict[str, Any] = {}
        agent_cfg = config.agent
        stage(f"training and testing {runs} run(s) on {events.symbol} {events.date}")
        for seed in tqdm(seeds, desc="runs", disable=not progress):
            if isinstance(agent_cfg, QLearningAgentConfig):
                learner: Any = QLearningAgent(
                    train_env,
                    k=agent_cfg.clusters,
                    alpha=agent_cfg.alpha,
                    gamma=agent_cfg.gamma,
                    tau_start=agent_cfg.tau_start,
                    tau_end=agent_cfg.tau_end,
                    seed=seed,
                )
                learner.fit_states(fit_obs)
                learner.learn(agent_cfg.episodes * train_env.n_steps, progress=False)
                learned = play(test_env, acting(learner))
            else:  # agent.kind: random: the "learner" is a second random agent (a null comparison)
                learner = RandomAgent(test_env, seed=seed + 10_000)
                learned = play(test_env, acting(learner))
            learner.save(run_dir / "models" / f"seed_{seed}.npz")
            rand = RandomAgent(test_env, seed=seed)
            randomly = play(test_env, acting(rand))
            for name, history in (("qlearning", learned), ("random", randomly)):
                column = f"{name}_seed{seed}"
                pnl[column] = history.steps.set_index("timestamp")["pnl"]
                positions[column] = history.steps.set_index("timestamp")["position"]
                finals[name].append(float(history.steps["pnl"].iloc[-1]))
                first.setdefault(name, (history, learner if name == "qlearning" else rand))
        held = play(test_env, lambda _obs, k: ACTION_BUY if k == 0 else ACTION_NONE)
        pnl["buy_and_hold"] = held.steps.set_index("timestamp")["pnl"]
        positions["buy_and_hold"] = held.steps.set_index("timestamp")["position"]
        t, p = welch_t_test(finals["qlearning"], finals["random"])
        metrics = {
            "agents": {
                **{name: _describe(values) for name, values in finals.items()},
                "buy_and_hold": _describe([float(held.steps["pnl"].iloc[-1])]),
            },
            "welch": {
                "t": t,
                "p": p,
                "alternative": "qlearning > random",
                "significance": config.evaluation.significance,
            },
            "currency": "USD",
        }
        stage("writing the run directory")
        write_text(run_dir / "config.yaml", config.dump_yaml())
        write_json(run_dir / "manifest.json", _manifest(config, run_dir, events, seeds, train_env, test_env, started))
        write_json(run_dir / "metrics.json", metrics)
        write_csv(run_dir / "pnl.csv", _frame(pnl), intraday=True)
        write_csv(run_dir / "positions.csv", _frame(positions), intraday=True)
        fills = [h.fills.assign(agent=name) for name, (h, _) in first.items()]
        write_csv(run_dir / "fills.csv", pd.concat(fills, ignore_index=True), index=False, intraday=True)
        if isinstance(first["qlearning"][1], QLearningAgent):
            write_csv(run_dir / "policy.csv", _policy(first["qlearning"][1]), index=False)
        stage("writing the report")
        write_orderbook_report(run_dir)
        return OrderBookResult(run_dir, metrics)


def _describe(values: list[float]) -> dict[str, float]:
    data = np.asarray(values, dtype=np.float64)
    std = float(data.std(ddof=1)) if data.size > 1 else 0.0
    return {
        "runs": int(data.size),
        "mean": float(data.mean()),
        "std": std,
        "min": float(data.min()),
        "max": float(data.max()),
    }


def _frame(columns: dict[str, pd.Series]) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    frame.index = pd.DatetimeIndex(frame.index, name="timestamp")
    return frame


def _policy(agent: Any) -> pd.DataFrame:
    """Per state: its cluster, position and open orders, the greedy action and the visits (of the first run)."""
    from rltrade.agents.qlearning import STATES_PER_CLUSTER
    from rltrade.envs.orderbook import ACTION_NAMES

    rows = []
    for state in range(agent.q.shape[0]):
        cluster, rest = divmod(state, STATES_PER_CLUSTER)
        position, flags = divmod(rest, 4)
        visits = int(agent.visits[state].sum())
        best = int(np.argmax(agent.q[state]))
        rows.append(
            {
                "state": state,
                "cluster": cluster,
                "position": ("short", "flat", "long")[position],
                "bid_open": bool(flags & 2),
                "ask_open": bool(flags & 1),
                "greedy_action": ACTION_NAMES[best] if visits else "none (unvisited)",
                "q_best": float(agent.q[state, best]),
                "visits": visits,
            }
        )
    return pd.DataFrame(rows)


def _manifest(
    config: OrderBookConfig, run_dir: Path, events: Any, seeds: list[int], train: Any, test: Any, started: float
) -> dict[str, Any]:
    return {
        "format": 1,
        "name": config.name,
        "run_id": run_dir.name,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "strategy": "orderbook",
        "agent": config.agent.kind,
        "seeds": seeds,
        "session": {"symbol": events.symbol, "date": events.date, "tz": events.tz, "events": len(events)},
        "source": config.data.source,
        "decisions": {"train": int(train.n_steps), "test": int(test.n_steps)},
        "versions": versions(),
        "git_commit": git_commit(),
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
