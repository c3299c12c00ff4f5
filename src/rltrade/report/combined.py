"""The report section of seed 002's strategies (``direct_rl``, ``combined``): training, predictors, stops.

Rendered from what those strategies leave in the run directory: ``manifest.json`` (``direct``:
the direct agent's training per seed and the timing convention; ``combined``: the rules, the
exits per reason and the prices the stops were checked on), ``predictors.json`` (the LSTM's and
the CNN's out-of-sample scores against their naive references) and ``events.csv`` (the fills
and halts of the rules). Each part is shown only when its data are there; every verdict is
stated plainly, including "does not beat".
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from rltrade.errors import RLTradeError
from rltrade.runs import Run
from rltrade.runs.files import read_csv, read_json_object

PREDICTORS_FILE = "predictors.json"
"""The predictors' out-of-sample scores in a combined run directory."""
EVENTS_FILE = "events.csv"
"""Every entry, exit and halt of the rules, per seed, in a combined run directory."""
MAX_EVENT_ROWS = 100  # the stop list shows the last this many stop exits

STOPS_ON = {
    "high_low": "the bars' high and low (a stop and a take-profit touched in one bar count as the stop)",
    "close": "the close only (the data have no high and low; a stop fills at the close that crossed it)",
}


def applies(run: Run) -> bool:
    """True for a run of a seed 002 strategy (its manifest has a ``direct`` or ``combined`` record)."""
    return "direct" in run.manifest or "combined" in run.manifest or (run.run_dir / PREDICTORS_FILE).exists()


def section(run: Run) -> str:
    """The HTML of the section: direct-RL training, predictor diagnostics and stops, as the run has them."""
    parts = ['<h2 id="seed002">Direct RL, predictors and stops</h2>']
    direct = run.manifest.get("direct")
    if isinstance(direct, dict):
        parts.append(_direct_part(direct, run.annualization.periods_per_year))
    if (run.run_dir / PREDICTORS_FILE).exists():
        parts.append(_predictors_part(read_json_object(run.run_dir / PREDICTORS_FILE)))
    combined = run.manifest.get("combined")
    if isinstance(combined, dict):
        parts.append(_stops_part(run, combined))
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 3, percent: bool = False) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return f"{value * 100:.1f}%" if percent else f"{value:,.{digits}f}"


def _table(css: str, head: list[str], rows: list[list[str]]) -> str:
    """A table whose first column is text and the others numbers (already formatted, escaped)."""
    header = "".join(f"<th>{h}</th>" if i == 0 else f'<th class="num">{h}</th>' for i, h in enumerate(head))
    body = "\n".join(
        "<tr>" + "".join(f"<td>{c}</td>" if i == 0 else f'<td class="num">{c}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return (
        f'<div class="table-wrap"><table class="{css}"><thead><tr>{header}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def _count(flags: list[bool], what: str) -> str:
    """ "in k of n seeds" for a verdict, plainly."""
    k, n = sum(flags), len(flags)
    if k == n:
        return f"<strong>beats</strong> {what} in every seed ({n})"
    if k == 0:
        return f"<strong>does not beat</strong> {what} in any seed ({n})"
    return f"beats {what} in {k} of {n} seeds"


def _direct_part(direct: dict[str, Any], periods_per_year: int) -> str:
    seeds = direct.get("seeds") or {}
    root = math.sqrt(periods_per_year)
    with_test = any(isinstance(r.get("close_to_close"), dict) for r in seeds.values())
    head = ["Seed", "Train Sharpe", "Validation Sharpe", "Best epoch", "Epochs run", "Stopped early"]
    if with_test:
        head += ["Test Sharpe, training convention", "Test Sharpe, backtest"]
    rows = []
    for seed, record in seeds.items():

        def annual(value: Any) -> str:
            return _num(value * root if isinstance(value, int | float) else None, 2)

        row = [
            _esc(seed),
            annual(record.get("train_sharpe")),
            annual(record.get("val_sharpe")),
            _esc(record.get("best_epoch", "—")),
            _esc(record.get("epochs_run", "—")),
            "yes" if record.get("stopped_early") else "no",
        ]
        if with_test:
            close = record.get("close_to_close") or {}
            row += [_num(close.get("sharpe"), 2), _num(record.get("backtest_sharpe"), 2)]
        rows.append(row)
    note = (
        f"The direct agent's Sharpe ratios on its training window and on the validation window that stopped it "
        f"(the θ of the best validation epoch is kept), annualised with √{periods_per_year}."
    )
    if direct.get("convention"):
        note += " " + _esc(direct["convention"])
    return (
        "<h3>Direct reinforcement (Moody &amp; Saffell)</h3>\n"
        + _table("direct", head, rows)
        + f'\n<p class="note">{note}</p>'
    )


_LSTM_COLUMNS = (
    ("rmse", "RMSE", 4, False),
    ("naive_rmse", "Naive RMSE (last close)", 4, False),
    ("rmse_ratio", "RMSE / naive", 4, False),
    ("directional_accuracy", "Directional accuracy", 1, True),
    ("always_up_accuracy", "Always up", 1, True),
)
_CNN_COLUMNS = (
    ("accuracy", "Accuracy", 1, True),
    ("majority_accuracy", "Majority class", 1, True),
    ("always_up_accuracy", "Always up", 1, True),
    ("log_loss", "Log-loss", 4, False),
    ("base_rate_log_loss", "Log-loss of the base rate", 4, False),
    ("auc", "AUC", 3, False),
)


def _score_rows(data: dict[str, Any], model: str, columns: tuple[tuple[str, str, int, bool], ...]) -> list[list[str]]:
    rows = []
    for seed, scores in (data.get("seeds") or {}).items():
        values = scores.get(model, {})
        rows.append([_esc(seed)] + [_num(values.get(k), d, p) for k, _, d, p in columns])
    mean, std = (data.get(k, {}).get(model, {}) for k in ("mean", "std"))
    if mean and len(rows) > 1:
        cells = []
        for key, _, digits, percent in columns:
            spread = _num(std.get(key), digits, percent)
            cells.append(_num(mean.get(key), digits, percent) + f' <span class="muted">± {spread}</span>')
        rows.append(["mean ± std", *cells])
    return rows


def _predictors_part(data: dict[str, Any]) -> str:
    seeds = list((data.get("seeds") or {}).values())
    lstm = [s.get("lstm", {}) for s in seeds]
    cnn = [s.get("cnn", {}) for s in seeds]

    def better(rows: list[dict[str, Any]], key: str, ref: str, low: bool = False) -> list[bool]:
        out = []
        for r in rows:
            a, b = r.get(key), r.get(ref)
            if not (isinstance(a, int | float) and isinstance(b, int | float) and math.isfinite(a + b)):
                out.append(False)  # a missing score beats nothing
                continue
            out.append(a < b if low else a > b)
        return out

    test = data.get("test") or {}
    span = f" ({_esc(test.get('start'))} to {_esc(test.get('end'))})" if test else ""
    rmse = _count(better(lstm, "rmse", "naive_rmse", low=True), "the naive last-close forecast")
    direction = _count(better(lstm, "directional_accuracy", "always_up_accuracy"), "always-up")
    lstm_verdict = f"On RMSE the LSTM {rmse}; on the direction of the next move it {direction}."
    accuracy = _count(better(cnn, "accuracy", "majority_accuracy"), "the majority class")
    loss = _count(better(cnn, "log_loss", "base_rate_log_loss", low=True), "the constant base-rate forecast")
    auc = _count([isinstance(r.get("auc"), int | float) and r["auc"] > 0.5 for r in cnn], "chance (0.5)")
    cnn_verdict = f"On accuracy the CNN {accuracy}; on log-loss it {loss}; its AUC {auc}."
    return (
        f"<h3>Predictors, out of sample{span}</h3>\n"
        '<p class="note">Forecasts made at every test bar about the next one, scored on the test range only, '
        "against the naive references on the same bars.</p>\n"
        + _table("predictors", ["LSTM, seed", *[c[1] for c in _LSTM_COLUMNS]], _score_rows(data, "lstm", _LSTM_COLUMNS))
        + f'\n<p class="note">{lstm_verdict}</p>\n'
        + _table("predictors", ["CNN, seed", *[c[1] for c in _CNN_COLUMNS]], _score_rows(data, "cnn", _CNN_COLUMNS))
        + f'\n<p class="note">{cnn_verdict}</p>'
    )


def _stops_part(run: Run, combined: dict[str, Any]) -> str:
    counts = combined.get("exit_counts") or {}
    reasons = ["signal", "stop_loss", "take_profit", "daily_stop", "end", "halts"]
    labels = ["Signal exits", "Stop-loss", "Take-profit", "Daily stop", "Open at the end", "Halts"]
    rows = [[_esc(seed), *[_esc(c.get(r, 0)) for r in reasons]] for seed, c in counts.items()]
    checked = _esc(STOPS_ON.get(str(combined.get("stops_checked_on")), combined.get("stops_checked_on", "—")))
    rules = combined.get("rules") or {}
    rule_text = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in rules.items())
    note = (
        f"Exits per reason and seed. Stops were checked against <strong>{checked}</strong>; the daily stop "
        f"resets each session ({_esc(combined.get('sessions', 'UTC calendar days'))}). Rules: {rule_text}. "
        f"Every fill, at its real price, is in {EVENTS_FILE}."
    )
    return (
        "<h3>Trading rules: exits and stops</h3>\n"
        + _table("stops", ["Seed", *labels], rows)
        + (f'\n<p class="note">{note}</p>\n' + _stop_events(run))
    )


def _stop_events(run: Run) -> str:
    path = run.run_dir / EVENTS_FILE
    if not path.exists():
        return ""
    try:
        events = read_csv(path)
    except RLTradeError:  # no rows: nothing was traded
        return ""
    stops = events[events["reason"].isin(["stop_loss", "take_profit", "daily_stop"]) & (events["event"] != "entry")]
    if "seed" in stops.columns and len(stops):
        stops = stops[stops["seed"] == stops["seed"].min()]
    if stops.empty:
        return ""
    shown = stops.tail(MAX_EVENT_ROWS).iloc[::-1]
    rows = []
    for _, e in shown.iterrows():
        gap = " (gap)" if str(e.get("gap")).lower() == "true" else ""
        rows.append(
            [
                _esc(e["timestamp"]),
                _esc(e["symbol"]) if isinstance(e["symbol"], str) else "—",
                {1: "long", -1: "short"}.get(int(e["side"]), "—"),
                _esc(str(e["reason"]).replace("_", " ")) + gap,
                _num(pd.to_numeric(e["quantity"], errors="coerce"), 0),
                _num(pd.to_numeric(e["price"], errors="coerce"), 2),
                _num(pd.to_numeric(e["pnl"], errors="coerce"), 0),
            ]
        )
    title = f"first seed: the last {len(shown)} of {len(stops)} stop exits and halts, newest first"
    table = _table(
        "events", ["Time", "Symbol", "Position", "Reason", "Quantity", "Fill price", "P&amp;L before costs"], rows
    )
    return f"<details><summary>{_esc(title)}</summary>{table}</details>"
