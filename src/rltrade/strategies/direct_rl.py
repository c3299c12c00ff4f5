"""Direct reinforcement alone (``strategy: direct_rl``): Moody & Saffell's agent trained and traded per seed.

Per seed, :class:`~rltrade.agents.direct.DirectRLAgent` learns θ by gradient ascent on the Sharpe
ratio of its trading returns over the training range, on percentage close-to-close returns of
every traded symbol; the last ``agent.validation_bars`` bars of the training range are held out
for early stopping (they precede the test range). The agent is saved to
``models/seed_<s>.npz``. On the test range its portfolio weights ``w_t = F_t / N`` (long/short,
``Σ|w| ≤ 1``) are traded through :class:`~rltrade.envs.portfolio.PortfolioEnv` with
``long_short=True`` and ``leverage=1`` (which takes an action ``a`` with ``Σ|a| ≤ 1`` as the
weights ``a`` exactly), the config's fill timing, costs and capital, and the run is scored
against the baselines on the same dates and costs (:func:`rltrade.runs.evaluate.evaluate`).

Causality
    The weights at test bar t come from the returns of bars ≤ t: the recurrence starts flat at
    the bar before the test range (the account starts in cash) and its first lags are the
    returns just before the test range (:func:`rl_positions`).
Timing: training and backtest differ, on purpose
    The agent is trained on Moody & Saffell's convention: ``F_t``, decided at the close of bar t,
    earns ``r_{t+1}`` (a fill at that same close, costs ``δ·|ΔF|`` linear in the weights). The
    backtest fills the same decision with ``env.timing``: at the next bar's open (``next_open``)
    or close (``next_close``), so a position earns from one fill later than in training, and the
    costs are the env's (paid out of the portfolio, holdings drifting between rebalances). The
    run records, per seed, the test-range metrics under the training convention
    (``manifest.json``: ``direct.seeds.<s>.close_to_close``) beside the backtest's, and the report
    shows both: the difference is what the training convention would have overstated.
Frequency
    Nothing assumes daily bars: ranges are bar indices of the data, the validation window is
    counted in bars, and figures are annualised with the data's bars per year.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from rltrade.agents.direct import DirectRLAgent, DirectRLKind, ReturnWindows, returns_from_close
from rltrade.config import AnyConfig, ConfigError, DirectAgentConfig, RunConfig, raise_problems
from rltrade.envs.factory import env_kwargs
from rltrade.envs.market import Market
from rltrade.errors import RLTradeError
from rltrade.runs.evaluate import RunResult, column_name, evaluate
from rltrade.runs.manifest import base_manifest, new_run_dir
from rltrade.shared.files import write_json, write_text
from rltrade.strategies.base import BarStrategy, load_data, seeds_of
from rltrade.strategies.single import stamp_text

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

GROUP = "direct_rl"
"""The strategy's column in ``equity.csv`` (``direct_rl_seed<s>`` for the later seeds)."""

CONVENTION = (
    "The direct agent is trained on Moody & Saffell's close-to-close convention: the position decided at "
    "the close of bar t earns the return of bar t+1, as if filled at that same close, with costs linear in "
    "the change of the weights. The backtest fills the same decisions with the run's timing ({timing}) and "
    "cost model, one fill later than the training assumes (unless the timing is same_close). 'Test Sharpe, "
    "training convention' scores the test range the training's way; the backtest's figures are the honest ones."
)


# --------------------------------------------------------------------------------------------
# The run's ranges, returns and positions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """Bar indices of the run's ranges in the market's arrays (all inclusive).

    ``train_first .. val_first − 1`` trains, ``val_first .. train_last`` validates (the last
    ``agent.validation_bars`` bars of the training range), ``test_first .. test_last`` is traded.
    """

    train_first: int
    val_first: int
    train_last: int
    test_first: int
    test_last: int

    def stamps(self, times: NDArray[Any]) -> dict[str, dict[str, str]]:
        """The ranges as ``{"train"|"validation"|"test": {"start", "end"}}`` bar stamps (for the manifest)."""
        spans = {
            "train": (self.train_first, self.val_first - 1),
            "validation": (self.val_first, self.train_last),
            "test": (self.test_first, self.test_last),
        }
        return {k: {"start": stamp_text(times[a]), "end": stamp_text(times[b])} for k, (a, b) in spans.items()}


def _end_of(day: Any) -> pd.Timestamp:
    """The last instant of a config date: a date covers its whole day (intraday bars included)."""
    return pd.Timestamp(day) + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")


def split_rows(config: RunConfig, market: Market, lookback: int) -> Rows:
    """The bar indices of the training, validation and test ranges of ``config`` in ``market``.

    ``market`` is the test env's: its ``first``/``last`` are the traded bars. Raises
    :class:`ConfigError` when the training range leaves too few bars for the validation window
    and the lookback, or the test range has fewer than ``lookback`` bars of history before it.
    """
    assert config.train.end is not None  # RunConfig requires it for every strategy but the ensemble
    train = market.window(pd.Timestamp(config.train.start), _end_of(config.train.end))
    n_val = direct_section(config).validation_bars
    val_first = train.last - n_val + 1
    # Returns start at bar 1 (bar 0 has no previous close); the agent needs more than lookback of them.
    n_train = val_first - max(train.first, 1)
    if n_train <= lookback:
        raise ConfigError(
            f"train: {train.last - train.first + 1} bars from {stamp_text(market.times[train.first])} to "
            f"{stamp_text(market.times[train.last])}; agent.validation_bars {n_val} leaves {max(n_train, 0)} "
            f"training returns, and agent.lookback {lookback} needs more: widen train or shorten validation_bars"
        )
    if market.first - lookback < 0:
        raise ConfigError(
            f"test.start: the first test bar needs {lookback} earlier bars (agent.lookback); load more history"
        )
    return Rows(max(train.first, 1), val_first, train.last, market.first, market.last)


def direct_section(config: RunConfig) -> DirectAgentConfig:
    """``config.agent``, which a direct_rl or combined config makes a :class:`DirectAgentConfig`."""
    if not isinstance(config.agent, DirectAgentConfig):
        raise ConfigError(f"agent.kind: strategy {config.strategy} trains a direct agent, not {config.agent.kind}")
    return config.agent


def return_windows(close: FloatArray, rows: Rows, lookback: int) -> ReturnWindows:
    """The training and validation returns of :class:`Rows` from the ``[T, N]`` closes.

    Row t of the returns is bar t's ``close[t] / close[t−1] − 1``. The validation window is
    prefixed by the ``lookback − 1`` training returns before it, so that the agent's first
    validation decision is at the window's first bar and its trading returns cover exactly the
    validation bars (those prefix rows are lags, never scored).
    """
    returns = np.vstack([np.full((1, close.shape[1]), np.nan), returns_from_close(close[: rows.train_last + 1])])
    train = returns[rows.train_first : rows.val_first]
    val = returns[rows.val_first - (lookback - 1) : rows.train_last + 1]
    return ReturnWindows(train, val)


def market_bars(market: Market, last: int | None = None) -> pd.DataFrame:
    """Canonical bars (UTC timestamps) of ``market``'s aligned arrays up to bar ``last`` (default: its last).

    The strategies' models read these, so that they see exactly the prices the envs and the
    rules trade (the common date range of the symbols, adjusted as the market is).
    """
    stop = (market.last if last is None else last) + 1
    times = pd.DatetimeIndex(market.times[:stop]).tz_localize("UTC")
    n_symbols = len(market.symbols)
    frame = pd.DataFrame(
        {
            "symbol": np.tile(np.asarray(market.symbols, dtype=object), stop),
            "timestamp": times.repeat(n_symbols),
        }
    )
    for name in ("open", "high", "low", "close", "volume"):
        frame[name] = getattr(market, name)[:stop].reshape(-1)
    return frame


def close_frame(bars: pd.DataFrame) -> pd.DataFrame:
    """The closes of canonical bars as a frame: UTC timestamps × symbols (sorted), every cell present."""
    frame = bars.pivot(index="timestamp", columns="symbol", values="close").sort_index()
    frame = frame[sorted(frame.columns)]
    if frame.isna().any().any():
        symbol = frame.columns[frame.isna().any()][0]
        raise ConfigError(f"data: {symbol} lacks a close where other symbols have one; the direct agent needs all")
    index = pd.DatetimeIndex(frame.index)
    frame.index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return frame


def rl_positions(agent: DirectRLAgent, close: pd.DataFrame, start: Any) -> pd.DataFrame:
    """The agent's positions ``F_t`` in ``[-1, 1]`` for every bar of ``close`` from ``start`` on.

    ``F_t`` is decided at the close of bar t from the returns of bars ``t − lookback + 1 .. t``
    and ``F_{t−1}``; the recurrence starts flat at the bar before ``start`` (the account starts
    in cash). Nothing after bar t enters ``F_t``.

    Parameters
    ----------
    agent:
        A fitted agent over ``close``'s columns.
    close:
        :func:`close_frame`: closes by UTC timestamp (rows) and symbol (columns).
    start:
        The first bar to decide at (a timestamp; the first bar at or after it).
    """
    stamp = pd.Timestamp(start)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    first = int(close.index.searchsorted(stamp))
    lo = first - agent.lookback  # the oldest close the first decision's returns need
    if lo < 0:
        raise ConfigError(f"the first decision at {stamp} needs {agent.lookback} returns before it; load more history")
    returns = returns_from_close(close.to_numpy()[lo:])  # row j: the return of bar lo + 1 + j
    positions = agent.positions(returns)[agent.lookback - 1 :]  # row lookback − 1 is bar lo + lookback = first
    return pd.DataFrame(positions, index=close.index[first:], columns=close.columns)


def fit_direct(
    config: RunConfig, windows: ReturnWindows, seed: int, *, progress: bool = False
) -> tuple[DirectRLAgent, dict[str, Any]]:
    """A direct agent of ``config.agent`` trained on ``windows`` with ``seed``, and its training record."""
    n_assets = int(np.asarray(windows.train).shape[1])
    agent = DirectRLAgent(n_assets, seed=seed, **DirectRLKind.params(config))
    t0 = time.perf_counter()
    history = agent.fit(windows.train, windows.val, progress=progress, label=f"direct RL seed {seed}")
    record = {
        "train_seconds": round(time.perf_counter() - t0, 3),
        "best_epoch": history.best_epoch,
        "epochs_run": history.epochs_run,
        "stopped_early": history.stopped_early,
        "train_sharpe": history.train_sharpe[history.best_epoch],
        "val_sharpe": history.val_sharpe[history.best_epoch],
    }
    return agent, record


def close_to_close_metrics(
    agent: DirectRLAgent, close: pd.DataFrame, start: Any, *, periods_per_year: int, initial_value: float
) -> dict[str, float]:
    """The test range scored on the training's convention: ``R_t = w_{t−1}·r_t − δ·Σ|Δw_t|`` from flat.

    The equity curve starts at ``initial_value`` and compounds ``1 + R_t`` over the bars from
    ``start`` (the first bar's ``R`` is the cost of the first trade); its metrics are computed as
    the backtest's are (:func:`rltrade.backtest.metrics.performance_metrics`), with the
    turnover ``Σ|Δw_t|``.
    """
    from rltrade.backtest.metrics import performance_metrics

    first = int(close.index.searchsorted(pd.Timestamp(start)))
    returns = returns_from_close(close.to_numpy()[first - agent.lookback :])
    trading = agent.trading_returns(returns)
    weights = agent.weights(returns)[agent.lookback - 1 :]
    turnover = np.abs(np.diff(weights, axis=0, prepend=0.0)).sum(axis=1)
    values = initial_value * np.concatenate([[1.0], np.cumprod(1.0 + trading)])
    return performance_metrics(
        pd.Series(values), pd.Series(np.concatenate([[0.0], turnover])), periods_per_year=periods_per_year
    )


# --------------------------------------------------------------------------------------------
# The test env, the run directory, the manifest
# --------------------------------------------------------------------------------------------


def direct_env(config: RunConfig, bars: pd.DataFrame | None, market: Market | None = None) -> Any:
    """The long/short :class:`PortfolioEnv` over the test range that trades the agent's weights exactly.

    ``long_short=True, leverage=1``: an action ``a`` with ``Σ|a| ≤ 1`` is the target weights
    ``a`` (cash ``1 − Σa``). The config's timing, costs, capital and ``env.params`` apply; pass
    ``market`` (another such env's) to reuse its arrays.
    """
    from rltrade.envs.portfolio import PortfolioEnv

    kwargs = env_kwargs(config, "test")
    kwargs.update(long_short=True, leverage=1.0)
    return PortfolioEnv(bars, market=market, **kwargs)


def weights_policy(weights: FloatArray) -> Callable[[Any], FloatArray]:
    """A policy that plays ``weights[k]`` at its k-th call (the env's k-th step: bar ``market.first + k``)."""
    calls = 0

    def policy(obs: Any) -> FloatArray:
        nonlocal calls
        row = weights[calls]
        calls += 1
        return row

    return policy


@contextmanager
def building(final: Path) -> Iterator[Path]:
    """A hidden work folder renamed to ``final`` when the block succeeds, removed when it fails.

    An interrupted run leaves no half-written run directory (as :func:`rltrade.strategies.single.train`).
    """
    work = final.parent / f".{final.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    (work / "models").mkdir(parents=True)
    try:
        yield work
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def run_manifest(
    config: RunConfig, run_dir: Path, bars: pd.DataFrame, seeds: list[int], symbols: list[str], features: list[str]
) -> dict[str, Any]:
    """:func:`~rltrade.runs.manifest.base_manifest` of the run (its algorithm: the strategy's name)."""
    return base_manifest(config, run_dir, bars, seeds, symbols, features)


def direct_problems(config: RunConfig) -> list[tuple[str, str]]:
    """What a ``direct_rl`` config asks that the long/short weights env cannot do: ``(field, message)`` pairs."""
    problems = []
    if config.env.type != "portfolio":
        problems.append(
            ("env.type", f"strategy direct_rl trades the portfolio env (long/short), not {config.env.type}")
        )
    params = config.env.params
    if params.get("long_short", True) is not True:
        problems.append(("env.params.long_short", "strategy direct_rl trades long/short weights; leave it out"))
    if params.get("leverage", 1.0) != 1.0:
        problems.append(("env.params.leverage", "the direct agent's weights have Σ|w| ≤ 1; leverage must be 1"))
    if params.get("action_mode", "logits") != "logits":
        problems.append(("env.params.action_mode", "strategy direct_rl sets the actions itself; leave it out"))
    return problems


@dataclass(frozen=True)
class Setup:
    """What every seed of a run shares: the config, the bars, the test env and the ranges, returns and closes.

    ``traded`` holds the test env's aligned bars up to the last test bar (:func:`market_bars`),
    ``close`` their closes (:func:`close_frame`), ``windows`` the direct agent's training and
    validation returns (:func:`return_windows`).
    """

    config: RunConfig
    bars: pd.DataFrame
    index_close: pd.Series | None
    env: Any
    rows: Rows
    traded: pd.DataFrame
    close: pd.DataFrame
    windows: ReturnWindows
    periods_per_year: int

    @property
    def market(self) -> Market:
        """The test env's market."""
        market: Market = self.env.market
        return market

    @property
    def start(self) -> pd.Timestamp:
        """The first test bar (UTC)."""
        return pd.Timestamp(self.close.index[self.rows.test_first])


class SeedStrategy(BarStrategy):
    """A strategy of seed 002: per seed, models trained on the training range trade the test range.

    :meth:`run` loads the data, builds the :class:`Setup`, calls :meth:`trade_seed` for every
    seed inside a work folder, scores the trajectories with
    :func:`~rltrade.runs.evaluate.evaluate`, writes the manifest (with what :meth:`finish`
    adds) and the report. A subclass names its column (:attr:`group`), its test env
    (:meth:`test_env`), what one seed does and what the run adds at the end.
    """

    group: ClassVar[str]

    def test_env(self, config: RunConfig, bars: pd.DataFrame, market: Market | None = None) -> Any:
        """The env over the test range whose market, costs and timing the run trades (and the random agent);
        ``market``, when given, is that of an earlier env of this run, which it may reuse."""
        raise NotImplementedError

    def trade_seed(self, setup: Setup, seed: int, models: Path, stage: Callable[[str], None], progress: bool) -> Any:
        """Train seed ``seed``'s models, save them in ``models``, trade the test range: ``(trajectory, record)``."""
        raise NotImplementedError

    def finish(self, setup: Setup, work: Path, result: RunResult, records: dict[int, Any]) -> dict[str, Any]:
        """Write the strategy's own files into ``work``; return what it adds to the manifest."""
        raise NotImplementedError

    def run(
        self,
        config: RunConfig,
        runs_dir: str | Path = "runs",
        n_seeds: int = 1,
        *,
        progress: bool = True,
        on_stage: Callable[[str], None] | None = None,
        **options: Any,
    ) -> RunResult:
        """Train, backtest and report; returns the run directory and its metrics."""
        from rltrade.report import write_report

        if options:
            raise ConfigError(f"{', '.join(options)}: not options of `strategy: {config.strategy}`")
        started = time.perf_counter()
        stage = on_stage or (lambda message: log.info("%s", message))
        config = self.check(config)  # before any data is read
        seeds = seeds_of(config, n_seeds)
        stage("loading data")
        setup = self._setup(config, *load_data(config, progress))
        final = new_run_dir(config, runs_dir, create=False)
        with building(final) as work:
            write_text(work / "config.yaml", config.dump_yaml())
            trajectories, records = {}, {}
            for seed in seeds:
                trajectories[seed], records[seed] = self.trade_seed(setup, seed, work / "models", stage, progress)
            result = evaluate(
                work,
                config,
                setup.bars,
                setup.index_close,
                {self.group: trajectories},
                lambda: self.test_env(config, setup.bars, setup.market),
                progress=progress,
                on_stage=on_stage,
            )
            market = setup.market
            manifest = run_manifest(config, final, setup.bars, seeds, list(market.symbols), [])
            manifest.update(
                {
                    "ranges": setup.rows.stamps(market.times),
                    "timing": setup.env.timing.name,
                    "cost": repr(setup.env.cost_model),
                    **self.finish(setup, work, result, records),
                    "wall_time_s": round(time.perf_counter() - started, 1),
                }
            )
            write_json(work / "manifest.json", manifest)
        stage("writing the report")
        write_report(final)
        return dataclasses.replace(result, run_dir=final)

    def _setup(self, config: RunConfig, bars: pd.DataFrame, index_close: pd.Series | None) -> Setup:
        from rltrade.runs.manifest import annualization_of

        env = self.test_env(config, bars)
        lookback = direct_section(config).lookback
        rows = split_rows(config, env.market, lookback)
        traded = market_bars(env.market)
        close = close_frame(traded)
        windows = return_windows(close.to_numpy(), rows, lookback)
        ppy = annualization_of(config, bars).periods_per_year
        return Setup(config, bars, index_close, env, rows, traded, close, windows, ppy)


class DirectRL(SeedStrategy):
    """``strategy: direct_rl``: one direct agent per seed, trained, backtested out of sample and reported."""

    group = GROUP

    def check(self, config: AnyConfig, source: str = "config") -> RunConfig:
        """The bar strategies' check, and the env the direct agent's weights need."""
        checked = super().check(config, source)
        raise_problems(direct_problems(checked), source)
        return checked

    def test_env(self, config: RunConfig, bars: pd.DataFrame, market: Market | None = None) -> Any:
        """:func:`direct_env` (reusing ``market``'s arrays when given)."""
        return direct_env(config, bars, market)

    def trade_seed(
        self, setup: Setup, seed: int, models: Path, stage: Callable[[str], None], progress: bool
    ) -> tuple[Any, dict[str, Any]]:
        """Train the agent, save it, trade its weights through the long/short env; record both conventions."""
        stage(f"training the direct agent, seed {seed}")
        agent, record = fit_direct(setup.config, setup.windows, seed, progress=progress)
        agent.save(models / DirectRLKind().model_file(seed))
        stage(f"backtesting the direct agent, seed {seed}")
        weights = rl_positions(agent, setup.close, setup.start).to_numpy() / agent.n_assets
        record["close_to_close"] = close_to_close_metrics(
            agent,
            setup.close,
            setup.start,
            periods_per_year=setup.periods_per_year,
            initial_value=setup.config.env.initial_value,
        )
        return _trade(setup.env, weights), record

    def finish(self, setup: Setup, work: Path, result: RunResult, records: dict[int, Any]) -> dict[str, Any]:
        """The training record and both conventions' test Sharpe per seed (``direct``)."""
        first = min(records)
        for seed, record in records.items():
            record["backtest_sharpe"] = result.metrics[column_name(GROUP, seed, first)]["sharpe"]
        lookback = direct_section(setup.config).lookback
        return {
            "inputs": f"{lookback} lagged percentage returns per symbol and the previous position",
            "direct": {
                "convention": CONVENTION.format(timing=setup.env.timing.name),
                "seeds": {str(seed): record for seed, record in records.items()},
            },
        }


def _trade(env: Any, weights: FloatArray) -> Any:
    """One episode of ``env`` playing ``weights`` (row k at step k); checks every row but the last was played."""
    from rltrade.backtest.runner import run_policy

    trajectory = run_policy(env, weights_policy(weights))
    if len(trajectory) != len(weights):
        raise RLTradeError(f"the test env stepped {len(trajectory) - 1} times for {len(weights)} decision bars")
    return trajectory
