"""One ``drb paper`` process: the strategy hooks that journal every order and commit every bar.

:class:`PaperSession` restores the committed state (or warms the allocator up on the history),
journals decisions, orders (before they are sent) and fills, and commits the state after each bar;
:func:`paper_strategy_class` mixes its hooks into any strategy of :mod:`strategies.bt.strategies`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drb.errors import DataError, StateError
from runners.live.journal import Journal
from runners.live.options import PaperSetup, drb_version, fingerprint, jsonable
from runners.live.state import (
    STATE_FILE,
    STATE_FORMAT,
    STATE_VERSION,
    day,
    now,
    save_allocator,
    save_state,
)

__all__ = ["PaperSession", "PaperStrategyMixin", "paper_strategy_class"]

log = logging.getLogger("drb.paper")


# ================================================================================== session
class PaperSession:
    """State, journal and bookkeeping of one ``drb paper`` process (used by the strategy mixin).

    Parameters
    ----------
    folder : Path
        The state folder.
    setup : PaperSetup
    state, payload : dict or None
        The committed state and allocator payload (None: fresh start).
    journal : Journal
    history : MarketData or None
        Warm-up history (fresh start only).
    """

    def __init__(self, folder: Path, setup: PaperSetup, state: dict | None, payload: dict | None, journal: Journal, history: Any) -> None:
        self.folder = folder
        self.setup = setup
        self.state = state
        self.payload = payload
        self.journal = journal
        self.history = history
        self.bars_processed = int(state["bars_processed"]) if state else 0
        self.session_bars = 0
        self.source_stats: Callable[[], dict[str, int]] | None = None
        self._bar_key: str | None = None
        self._k_order = 0
        self._refs: dict[int, str] = {}
        self._decision_seen: Any = None
        self._decision_ctx: Any = None
        self.created = state.get("created") if state else now()
        self.vol_index_feed = False

    # ---------------------------------------------------------------------------- start
    def on_start(self, strat: Any) -> None:
        """Restore the committed state, or warm the allocator up on the history and commit."""
        if self.payload is not None:
            self._restore(strat)
        else:
            self._warm_up(strat)
            self.commit(strat, warmup=True)

    def _restore(self, strat: Any) -> None:
        st, pl = self.state, self.payload
        assert st is not None and pl is not None
        alloc = pl["allocator"]
        if list(getattr(alloc, "assets", [])) != list(strat.asset_names):
            raise StateError(f"{self.folder}: the state's assets {alloc.assets} differ from the feeds' {strat.asset_names}; refusing to trade")
        strat.allocator = alloc
        strat.pending = pl["pending"]
        strat._retry = bool(pl["retry"])
        strat.last_decision = pl["last_decision"]
        strat.rebalances = list(pl["rebalances"])
        self._decision_seen = strat.last_decision
        broker = strat.broker
        broker.setcash(float(st["broker"]["cash"]))
        positions = st["broker"]["positions"]
        for name, data in zip(strat.asset_names, strat.asset_datas):
            pos = positions.get(name, {"size": 0.0, "price": 0.0})
            broker.getposition(data).set(float(pos["size"]), float(pos["price"]))
        if self.setup.macro is not None:
            added = _extend_macro(alloc, self.setup.macro)
            if added:
                log.info("added %d new macro months to the cycle classifier", added)
        log.info(
            "resumed %s from %s: %d live bars processed, last bar %s, value %s",
            self.setup.strategy,
            self.folder / STATE_FILE,
            self.bars_processed,
            st["last_bar"],
            f"{st['broker']['value']:,.2f}",
        )

    def _warm_up(self, strat: Any) -> None:
        hist = self.history
        if list(hist.assets) != list(strat.asset_names):
            raise DataError(f"{self.setup.history_path}: history assets {hist.assets} differ from the live feeds' {strat.asset_names}")
        closes = hist.prices.to_numpy(dtype=float)
        vol = hist.vol_index.reindex(hist.prices.index).to_numpy(dtype=float) if hist.vol_index is not None else None
        for i, date in enumerate(hist.prices.index):
            strat.allocator.update(date, closes[i], vol[i] if vol is not None else math.nan)
        warm = int(getattr(strat.allocator, "warmup", 0))
        n = len(hist.prices)
        when = "at the first live bar" if n > warm else f"after {warm - n + 1} live bars"
        log.info("warmed up on %d history bars (%s .. %s); warmup=%d: first investment %s", n, day(hist.prices.index[0]), day(hist.prices.index[-1]), warm, when)

    # ---------------------------------------------------------------------------- journal hooks
    def _bar_date(self, strat: Any) -> str:
        return day(strat.asset_datas[0].datetime.date(0))

    def _new_bar(self, key: str) -> None:
        if key != self._bar_key:
            self._bar_key = key
            self._k_order = 0

    def before_execute(self, strat: Any) -> None:
        """Remember the decision being executed (for the order entries)."""
        self._decision_ctx = strat.pending

    def before_order(self, strat: Any, data: Any, size: float, side: str) -> str:
        """Journal an order before it is sent; returns its id."""
        bar = self._bar_date(strat)
        self._new_bar(bar)
        oid = f"{bar}/order/{self._k_order}"
        self._k_order += 1
        dec = self._decision_ctx
        entry = {
            "id": oid,
            "type": "order",
            "bar": bar,
            "symbol": data._name,
            "side": side,
            "size": float(size),
            "planned_price": float(data.open[0]),
            "trigger": dec.trigger if dec is not None else None,
        }
        self.journal.append(entry)
        return oid

    def after_order(self, order: Any, oid: str) -> None:
        """Link backtrader's order reference to the journal id."""
        if order is not None:
            self._refs[order.ref] = oid

    def on_order(self, strat: Any, order: Any) -> None:
        """Journal a fill or an order problem."""
        if order.status in (order.Submitted, order.Accepted):
            return
        oid = self._refs.get(order.ref)
        if oid is None:
            return
        bar = self._bar_date(strat)
        k = oid.rsplit("/", 1)[1]
        if order.status == order.Completed:
            entry = {
                "id": f"{oid.split('/', 1)[0]}/fill/{k}",
                "type": "fill",
                "bar": bar,
                "order": oid,
                "symbol": order.data._name,
                "amount": float(order.executed.size),
                "price": float(order.executed.price),
                "commission": float(order.executed.comm),
            }
        else:
            entry = {
                "id": f"{oid.split('/', 1)[0]}/issue/{k}",
                "type": "order_issue",
                "bar": bar,
                "order": oid,
                "symbol": order.data._name,
                "status": order.getstatusname(),
                "size": float(order.created.size),
            }
        self.journal.append(entry)

    def _journal_decision(self, strat: Any, bar: str) -> None:
        dec = strat.last_decision
        if dec is None or dec is self._decision_seen:
            return
        self._decision_seen = dec
        self.journal.append(
            {
                "id": f"{bar}/decision/0",
                "type": "decision",
                "bar": bar,
                "trigger": dec.trigger,
                "target": {a: float(w) for a, w in zip(strat.asset_names, dec.target)},
            }
        )

    # ---------------------------------------------------------------------------- commit
    def on_bar_end(self, strat: Any) -> None:
        """After the strategy's ``next``: journal a new decision, then commit the bar."""
        bar = self._bar_date(strat)
        self._journal_decision(strat, bar)
        self.journal.check_resolved(bar)
        self.bars_processed += 1
        self.session_bars += 1
        self.commit(strat)
        if not self.setup.extras.get("quiet"):
            rec = strat.rebalances[-1] if strat.rebalances and day(strat.rebalances[-1]["date"]) == bar else None
            what = f"  rebalanced ({rec['trigger']}, turnover {rec['turnover']:.4f})" if rec else ""
            if strat.pending is not None:
                what += f"  decided: {strat.pending.trigger} (orders at the next open)"
            log.info("bar %s  value %s  cash %s%s", bar, f"{strat.broker.getvalue():,.2f}", f"{strat.broker.getcash():,.2f}", what)

    def _last_closes(self, strat: Any) -> tuple[dict[str, float], Any]:
        """The closes (and volatility index) of the bar being committed: the history's last at the warm-up."""
        if self.history is not None and self.bars_processed == 0:
            closes = {a: float(v) for a, v in self.history.prices.iloc[-1].items()}
            vi = self.history.vol_index.iloc[-1] if self.history.vol_index is not None else None
        else:
            closes = {a: float(d.close[0]) for a, d in zip(strat.asset_names, strat.asset_datas)}
            vi = strat.vol_data.close[0] if strat.vol_data is not None else None
        return closes, vi

    def _broker_section(self, strat: Any) -> dict[str, Any]:
        """Cash, value (currency units) and every position's size and average price."""
        broker = strat.broker
        positions = {}
        for name, data in zip(strat.asset_names, strat.asset_datas):
            pos = broker.getposition(data)
            positions[name] = {"size": float(pos.size), "price": float(pos.price)}
        return {
            "cash": float(broker.getcash()),
            "value": float(broker.getvalue()),
            "positions": positions,
            "commission": float(self.setup.broker.get("commission", 0.0)),
            "slippage": float(self.setup.broker.get("slippage", 0.0)),
        }

    def _state_dict(self, strat: Any, last_bar: str, pkl_name: str, pkl_sha: str, pkl_size: int) -> dict[str, Any]:
        """The content of ``state.json`` after ``last_bar`` (allocator file ``pkl_name`` already written)."""
        alloc = strat.allocator
        closes, vi = self._last_closes(strat)
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "drb_version": drb_version(),
            "created": self.created,
            "written_at": now(),
            "strategy": self.setup.strategy,
            "fingerprint": fingerprint(self.setup),
            "source": self.setup.source,
            "assets": list(strat.asset_names),
            "asset_classes": dict(alloc.asset_classes),
            "last_bar": last_bar,
            "bars_processed": self.bars_processed,
            "last_closes": closes,
            "last_vol_index": _num(vi),
            "vol_index_feed": bool(self.vol_index_feed),
            "broker": self._broker_section(strat),
            "pending": _pending_section(strat),
            "last_rebalance": _last_rebalance_section(strat),
            "last_decision_bar": getattr(alloc, "last_rebalance_bar", None),
            "allocator_bar": int(alloc.bar),
            "invested": bool(alloc.invested),
            "cooldown": _cooldown(alloc),
            "budgets": _budgets(alloc, strat.asset_names),
            "allocator": {"file": pkl_name, "sha256": pkl_sha, "bytes": pkl_size, "class": type(alloc).__name__},
            "journal": self.journal.committed(),
            "live_source": self.source_stats() if self.source_stats else None,
        }
        if hasattr(alloc, "report"):
            state["allocator"]["report"] = jsonable(alloc.report())
        return state

    def commit(self, strat: Any, *, warmup: bool = False) -> None:
        """Write the allocator file, then ``state.json`` (the commit), then drop older allocator files."""
        if warmup:
            last_bar = day(self.history.prices.index[-1])
        else:
            last_bar = self._bar_date(strat)
        payload = {
            "allocator": strat.allocator,
            "pending": strat.pending,
            "retry": bool(strat._retry),
            "last_decision": strat.last_decision,
            "rebalances": strat.rebalances,
        }
        name, sha, size = save_allocator(self.folder, self.bars_processed, payload)
        state = self._state_dict(strat, last_bar, name, sha, size)
        save_state(self.folder, state)
        self.state = state

    def on_stop(self, strat: Any) -> None:
        """Nothing to save (every bar was committed); log where the run stands."""
        log.info("stopped after %d bars this session (%d in total); state in %s", self.session_bars, self.bars_processed, self.folder)



def _num(x: Any) -> float | None:
    """JSON-safe float (NaN and infinities become null)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None




def _pending_section(strat: Any) -> dict[str, Any] | None:
    """The decision taken at the last close, to be traded at the next open (None: none pending)."""
    pending = strat.pending
    if pending is None:
        return None
    return {
        "trigger": pending.trigger,
        "target": {a: float(w) for a, w in zip(strat.asset_names, pending.target)},
        "retry": bool(strat._retry),
    }


def _last_rebalance_section(strat: Any) -> dict[str, Any] | None:
    """Date, trigger, turnover and cost (currency units) of the last rebalance (None: none yet)."""
    if not strat.rebalances:
        return None
    last = strat.rebalances[-1]
    return {"date": day(last["date"]), "trigger": last["trigger"], "turnover": float(last["turnover"]), "cost": float(last["cost"])}


def _cooldown(alloc: Any) -> dict[str, Any] | None:
    cd = getattr(alloc, "cooldown", None)
    if cd is None:
        return None
    last = getattr(alloc, "last_rebalance_bar", None)
    since = None if last is None else int(alloc.bar - last)
    return {"bars": int(cd), "bars_since_rebalance": since, "remaining": 0 if since is None else max(0, int(cd) - since)}


def _budgets(alloc: Any, assets: list[str]) -> dict[str, Any] | None:
    def vec(x: Any) -> dict[str, float | None] | None:
        if x is None:
            return None
        return {a: _num(v) for a, v in zip(assets, np.asarray(x, dtype=float))}

    if hasattr(alloc, "budget_now"):
        return {
            "smoothed": vec(alloc.budget_now),
            "target": vec(getattr(alloc, "budget_target", None)),
            "lambda": _num(getattr(alloc, "lam", None)),
            "regime": getattr(alloc, "regime", None),
            "reference_regime": getattr(alloc, "ref_regime", None),
            "reference_eigenvalue": _num(getattr(alloc, "ref_eigen", None)),
        }
    b = alloc.budget() if hasattr(alloc, "budget") else None
    return None if b is None else {"smoothed": vec(b)}


def _extend_macro(alloc: Any, macro: pd.DataFrame) -> int:
    """Queue macro months newer than the allocator knows (the macro file grows monthly)."""
    known = getattr(alloc, "macro", None)
    cycle = getattr(alloc, "cycle", None)
    if known is None or cycle is None or macro is None or len(known) == 0:
        return 0
    months = pd.DatetimeIndex(macro.index).to_period("M").to_timestamp()
    new = macro.set_axis(months)
    new = new.loc[new.index > known.index.max(), list(known.columns)] if set(known.columns) <= set(new.columns) else new.iloc[0:0]
    for ref, row in zip(new.index, new.to_numpy(dtype=float)):
        cycle.add_macro(ref, row)
    if len(new):
        alloc.macro = pd.concat([known, new])
    return len(new)


# ================================================================================== strategy
class PaperStrategyMixin:
    """Hooks a :class:`~strategies.bt.strategies.RiskBudgetStrategy` into a :class:`PaperSession`.

    ``start`` restores (or warms up), ``next`` commits the bar after the strategy's own logic,
    ``buy``/``sell`` journal each order before it is sent, ``notify_order`` journals fills.
    """

    _paper: PaperSession

    def start(self) -> None:
        super().start()  # type: ignore[misc]
        self._paper.on_start(self)

    def next(self) -> None:
        super().next()  # type: ignore[misc]
        self._paper.on_bar_end(self)

    def prenext_open(self) -> None:
        # backtrader skips ``next_open`` on a run's first bar (the strategy clock has not started):
        # a resumed run must still trade the decision taken at the last committed close.
        if self.pending is not None:  # type: ignore[attr-defined]
            self.next_open()  # type: ignore[attr-defined]

    def _execute(self, prices: np.ndarray, date: pd.Timestamp) -> None:
        self._paper.before_execute(self)
        super()._execute(prices, date)  # type: ignore[misc]

    def _resolve(self, data: Any) -> Any:
        if data is None:
            return self.datas[0]  # type: ignore[attr-defined]
        if isinstance(data, str):
            return self.getdatabyname(data)  # type: ignore[attr-defined]
        return data

    def buy(self, data: Any = None, size: Any = None, **kwargs: Any) -> Any:
        d = self._resolve(data)
        oid = self._paper.before_order(self, d, size, "buy")
        order = super().buy(data=d, size=size, **kwargs)  # type: ignore[misc]
        self._paper.after_order(order, oid)
        return order

    def sell(self, data: Any = None, size: Any = None, **kwargs: Any) -> Any:
        d = self._resolve(data)
        oid = self._paper.before_order(self, d, size, "sell")
        order = super().sell(data=d, size=size, **kwargs)  # type: ignore[misc]
        self._paper.after_order(order, oid)
        return order

    def notify_order(self, order: Any) -> None:
        super().notify_order(order)  # type: ignore[misc]
        self._paper.on_order(self, order)

    def stop(self) -> None:
        super().stop()  # type: ignore[misc]
        self._paper.on_stop(self)


def paper_strategy_class(base: type, session: PaperSession) -> type:
    """``Paper<Name>``: ``base`` with the paper-trading hooks of :class:`PaperStrategyMixin`."""
    return type(f"Paper{base.__name__}", (PaperStrategyMixin, base), {"_paper": session, "__module__": __name__})
