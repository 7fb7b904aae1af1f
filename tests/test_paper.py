"""Paper trading (runners.live): state, journal, resume after SIGKILL, clean stops, bad state.

The market: the embedded synthetic market (seed 5), 150 bars of warm-up history and 60 live bars,
``DynamicRiskBudget`` with the EWMA risk model, weekly rebalancing and a 2-bar cooldown (so orders
are frequent). The reference is one uninterrupted run over the complete live file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from runners.cli import main as drb
from runners.live.replay import market_table

HIST, LIVE = 150, 60
CONFIG = """[data]
prices = "history.csv"
macro = "macro.csv"

[execution]
warmup = 120

[strategy.DynamicRiskBudget]
risk_model = "ewma"
rebalance = "weekly"
cooldown = 2
"""


def _line(date: pd.Timestamp, row) -> str:
    return f"{date:%Y-%m-%d}," + ",".join(repr(float(x)) for x in row) + "\n"


class Market:
    """Files of the test market."""

    def __init__(self, folder: Path) -> None:
        bars, macro = market_table(seed=5, start="2019-01-01", end="2019-10-31")
        self.folder = folder
        self.header = "date," + ",".join(bars.columns) + "\n"
        hist, self.rows = bars.iloc[:HIST], bars.iloc[HIST : HIST + LIVE]
        (folder / "history.csv").write_text(self.header + "".join(_line(d, r) for d, r in zip(hist.index, hist.to_numpy())))
        macro.to_csv(folder / "macro.csv")
        self.config = folder / "paper.toml"
        self.config.write_text(CONFIG)
        self.full = folder / "live_full.csv"
        self.full.write_text(self.header + "".join(self.lines()))
        self.last = f"{self.rows.index[-1]:%Y-%m-%d}"
        self.hist_end = f"{hist.index[-1]:%Y-%m-%d}"

    def lines(self) -> list[str]:
        return [_line(d, r) for d, r in zip(self.rows.index, self.rows.to_numpy())]

    def args(self, state: Path, live: Path | None = None, *extra: str) -> list[str]:
        return [
            "paper", str(self.config), "--live", str(live or self.full), "--state", str(state),
            "--poll", "0.02", "--until", self.last, "--quiet", *extra,
        ]  # fmt: skip


class _Writer(threading.Thread):
    """Append the live rows one by one (each with a single write + fsync), like a data vendor.

    Never beyond ``limit`` rows: a test lets the rows out with :meth:`allow`, so a run can never
    get ahead of the point where the test stops or kills it, however busy the machine is.
    """

    def __init__(self, path: Path, market: Market, delay: tuple[float, float], seed: int, limit: int = LIVE) -> None:
        super().__init__(daemon=True)
        self.path, self.market, self.delay, self.rng = path, market, delay, random.Random(seed)
        self.limit = limit
        self.cond = threading.Condition()
        self.start()

    def allow(self, n: int) -> None:
        with self.cond:
            self.limit = max(self.limit, min(n, LIVE))
            self.cond.notify_all()

    def run(self) -> None:
        with open(self.path, "a") as fh:
            fh.write(self.market.header)
            fh.flush()
            for i, line in enumerate(self.market.lines()):
                with self.cond:
                    self.cond.wait_for(lambda i=i: i < self.limit)
                time.sleep(self.rng.uniform(*self.delay))  # pacing only, never synchronization
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())


def _wait_for(cond: Callable[[], bool], proc: subprocess.Popen | None = None, what: str = "", timeout: float = 600) -> None:
    """Poll ``cond`` (a file or process condition) until true; fail if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended while waiting for {what}: {proc.communicate()[1][-2000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


@contextlib.contextmanager
def _log_event(text: str, logger: str = "drb.live"):
    """An event set when ``logger`` emits a record containing ``text``."""
    event = threading.Event()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if text in record.getMessage():
                event.set()

    handler = Handler()
    logging.getLogger(logger).addHandler(handler)
    try:
        yield event
    finally:
        logging.getLogger(logger).removeHandler(handler)


def _state(folder: Path) -> dict:
    return json.loads((folder / "state.json").read_text())


def _journal(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "journal.jsonl").read_text().splitlines()]


def _bars(folder: Path) -> int:
    try:
        return int(_state(folder)["bars_processed"])
    except (FileNotFoundError, ValueError, KeyError):
        return -1


def _same_run(folder: Path, ref: Path) -> None:
    """Final positions, cash, state and journal equal the reference (journal: except wall-clock times)."""
    a, b = _state(folder), _state(ref)
    assert a["broker"] == b["broker"]  # cash, value, every position's size and price: exactly equal
    for key in ("last_bar", "bars_processed", "pending", "last_rebalance", "cooldown", "budgets", "last_closes", "invested"):
        assert a[key] == b[key], key
    ja, jb = _journal(folder), _journal(ref)
    strip = [{k: v for k, v in e.items() if k != "logged_at"} for e in ja]
    assert strip == [{k: v for k, v in e.items() if k != "logged_at"} for e in jb]
    assert [e["seq"] for e in ja] == list(range(1, len(ja) + 1))
    assert len({e["id"] for e in ja}) == len(ja)  # no order, fill or decision journaled twice
    assert a["journal"]["bytes"] == (folder / "journal.jsonl").stat().st_size
    assert sorted(p.name for p in folder.glob("allocator-*.json")) == [a["allocator"]["file"]]


_SPAWNED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_leftover_processes():
    """A failing test never leaves a paper process behind (it would wait for rows for ever)."""
    yield
    while _SPAWNED:
        proc = _SPAWNED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _spawn(args: list[str], env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runners.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
    )
    _SPAWNED.append(proc)
    return proc


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Market:
    return Market(tmp_path_factory.mktemp("paper_market"))


@pytest.fixture(scope="module")
def reference(market) -> Path:
    """The uninterrupted run over the complete live file."""
    state = market.folder / "reference"
    assert drb(market.args(state)) == 0
    st = _state(state)
    assert st["bars_processed"] == LIVE and st["last_bar"] == market.last
    kinds = [e["type"] for e in _journal(state)]
    assert kinds.count("order") >= 20 and kinds.count("fill") == kinds.count("order")
    return state


def test_state_and_journal_formats(reference, market):
    st = _state(reference)
    assert st["format"] == "drb-paper-state" and st["version"] == 2
    assert st["strategy"] == "DynamicRiskBudget" and st["assets"] == list(market.rows.columns[:-1])
    pos = st["broker"]["positions"]
    value = st["broker"]["cash"] + sum(pos[a]["size"] * st["last_closes"][a] for a in st["assets"])
    assert value == pytest.approx(st["broker"]["value"], rel=1e-12)
    assert set(st["budgets"]) >= {"smoothed", "target", "lambda", "regime"}
    assert sum(st["budgets"]["smoothed"].values()) == pytest.approx(1.0)
    assert st["cooldown"]["bars"] == 2 and st["last_rebalance"]["trigger"]
    assert st["allocator"]["class"] == "DynamicRiskBudgetAllocator" and len(st["allocator"]["sha256"]) == 64
    assert st["live_source"]["accepted"] == LIVE
    journal = _journal(reference)
    assert st["journal"]["seq"] == len(journal)
    # every order is journaled before its fill, fills match the orders' sizes and sides
    orders = {e["id"]: e for e in journal if e["type"] == "order"}
    seen = set()
    for e in journal:
        if e["type"] == "order":
            seen.add(e["id"])
        if e["type"] == "fill":
            o = orders[e["order"]]
            assert e["order"] in seen and e["bar"] == o["bar"] and e["symbol"] == o["symbol"]
            assert e["amount"] == pytest.approx(o["size"] if o["side"] == "buy" else -o["size"])
            assert e["price"] == pytest.approx(o["planned_price"], rel=1e-12)  # sized at the fill price
    # decisions at a close, orders at the next bar's open
    dates = [f"{d:%Y-%m-%d}" for d in market.rows.index]
    for e in journal:
        if e["type"] == "decision":
            nxt = dates[dates.index(e["bar"]) + 1] if e["bar"] != dates[-1] else None
            assert nxt is None or any(o["bar"] == nxt for o in orders.values())


def test_sigkill_at_random_points_and_restart_equals_uninterrupted_run(market, reference, tmp_path):
    """A background writer feeds bars; the paper process is SIGKILLed at random points 5 times.

    The kill plan is drawn from a fresh seed each run (``DRB_FAULT_SEED=N`` replays one); every
    failure message names the seed.
    """
    seed = int(os.environ.get("DRB_FAULT_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    live, state = tmp_path / "live.csv", tmp_path / "state"
    writer = _Writer(live, market, (0.002, 0.03), seed=seed, limit=0)
    args = market.args(state, live)
    kills, in_doubt = [], 0
    # 1) during start-up / warm-up, 2-5) after random numbers of processed bars (each at least one
    # bar further than the last commit), at a random delay. The writer lets out at most a few rows
    # beyond the kill point and never the --until row: every kill hits a running process.
    plan = [("startup", rng.uniform(0.1, 1.2))] + [("bars", t) for t in sorted(rng.sample(range(2, LIVE - 12), 4))]
    for kind, point in plan:
        proc = _spawn(args)
        if kind == "startup":
            time.sleep(point)  # a random kill time, not a synchronization: no row exists yet
        else:
            point = min(LIVE - 12, max(point, _bars(state) + rng.randint(1, 3)))
            writer.allow(point + rng.randint(0, 4))
            _wait_for(lambda: _bars(state) >= point, proc, f"bar {point} (DRB_FAULT_SEED={seed})")  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.02))  # random kill time inside the next bars
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == -signal.SIGKILL, (seed, kind, point, err[-2000:])
        kills.append(_bars(state))
        journal = state / "journal.jsonl"
        if kills[-1] >= 0 and journal.exists():
            in_doubt += journal.stat().st_size > _state(state)["journal"]["bytes"]  # killed inside a bar
    writer.allow(LIVE)
    writer.join(600)
    final = _spawn(args)
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, (seed, err[-2000:])
    assert f"last {market.last}" in out, seed
    print(f"seed {seed}: killed at bars {kills}; {in_doubt} kills left journal entries in doubt")
    try:
        _same_run(state, reference)
    except AssertionError as exc:
        raise AssertionError(f"DRB_FAULT_SEED={seed}: {exc}") from exc


def test_deterministic_kills_inside_a_bar_resume_without_repeating(market, reference, tmp_path):
    """SIGKILL inside the first commit (after the warm-up), right after an order is journaled
    (before the rest of its batch), after a fill, and between the allocator file and state.json:
    each restart starts afresh or reproduces the in-doubt entries."""
    journal = _journal(reference)
    dates = [f"{d:%Y-%m-%d}" for d in market.rows.index]
    mid_order = next(e["seq"] for e, f in zip(journal, journal[1:]) if e["type"] == f["type"] == "order" and dates.index(e["bar"]) > 5)
    commit_bar = dates.index(journal[mid_order + 10]["bar"]) + 3
    late_fill = next(e["seq"] for e in journal if e["type"] == "fill" and dates.index(e["bar"]) > commit_bar + 2)
    state = tmp_path / "state"
    for spec in ("commit:0", f"journal:{mid_order}", f"commit:{commit_bar}", f"journal:{late_fill}"):
        proc = _spawn(market.args(state), env={"DRB_PAPER_KILL_AT": spec})
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == -signal.SIGKILL, (spec, err[-2000:])
        if spec == "commit:0":  # killed inside the first commit, after the warm-up: no state yet
            assert sorted(p.name for p in state.iterdir() if p.name != ".lock") == ["allocator-00000000.json"]
            continue
        st = _state(state)
        if spec.startswith("journal"):
            assert (state / "journal.jsonl").stat().st_size > st["journal"]["bytes"]  # entries in doubt
        else:
            assert st["bars_processed"] == commit_bar - 1
            assert len(list(state.glob("allocator-*.json"))) == 2  # an uncommitted allocator file
    final = _spawn(market.args(state))
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err[-2000:]
    assert "journaled entries reproduced, none written twice" in err
    _same_run(state, reference)


def test_sigterm_finishes_the_bar_and_exits_0(market, reference, tmp_path):
    live, state = tmp_path / "live.csv", tmp_path / "state"
    writer = _Writer(live, market, (0.0, 0.01), seed=4, limit=10)  # the run cannot pass bar 10
    proc = _spawn([a for a in market.args(state, live) if a != "--quiet"])
    _wait_for(lambda: _bars(state) >= 5, proc, "bar 5")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert "SIGTERM received: finishing the current bar" in err and "(SIGTERM received)" in out
    st = _state(state)
    assert 5 <= st["bars_processed"] <= 10
    assert f"last {st['last_bar']}" in out
    assert st["journal"]["bytes"] == (state / "journal.jsonl").stat().st_size  # nothing in doubt
    writer.allow(LIVE)
    writer.join(600)
    assert drb(market.args(state, live)) == 0  # resume in-process to the end
    _same_run(state, reference)


def test_stop_reason_comes_from_the_bars_processed(market, reference, tmp_path, capsys, monkeypatch):
    """Every live row up to --until is queued at the first poll; a SIGTERM during bar 5 stops the
    run there and is the reason printed (not ``reached --until``, whose bar was never processed)."""
    from runners.live.session import PaperSession

    state = tmp_path / "state"
    on_bar_end = PaperSession.on_bar_end

    def signal_at_bar_5(self, strat) -> None:
        on_bar_end(self, strat)
        if self.bars_processed == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # handled in this (main) thread before the next bar

    monkeypatch.setattr(PaperSession, "on_bar_end", signal_at_bar_5)
    assert drb(market.args(state)) == 0
    out = capsys.readouterr().out
    fifth = f"{market.rows.index[4]:%Y-%m-%d}"
    assert f"processed 5 bars (SIGTERM received); 5 live bars in total, last {fifth}" in out, out
    assert _state(state)["last_bar"] == fifth


def test_sigint_stops_cleanly_in_process(market, reference, tmp_path):
    live, state = tmp_path / "live.csv", tmp_path / "state"
    writer = _Writer(live, market, (0.0, 0.01), seed=5, limit=20)
    sent = []

    def interrupt() -> None:
        _wait_for(lambda: _bars(state) >= 3, what="bar 3")
        sent.append(_bars(state))
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # as from outside

    th = threading.Thread(target=interrupt, daemon=True)
    th.start()
    assert drb(market.args(state, live)) == 0
    th.join()
    assert sent and 3 <= _bars(state) <= 20
    writer.allow(LIVE)
    writer.join(600)
    assert drb(market.args(state, live)) == 0
    _same_run(state, reference)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate_state", "truncated state file"),
        ("garbage_state", "corrupt state file"),
        ("version", "state format version 99, this drb reads version 2"),
        ("allocator_file", "does not match the sha256"),
        ("payload_version", "allocator state of another version"),
        ("journal_cut", "journal truncated"),
        ("journal_edit", "journal altered"),
        ("no_state", "state.json is missing"),
        ("strategy", "the state is for strategy DynamicRiskBudget, not EqualWeight"),
        ("params", "params 'cooldown' changed"),
        ("lock", "another drb paper process"),
        ("cash", "disagrees with"),
        ("position", "disagrees with"),
        ("value", "disagrees with cash + positions at the last closes"),
    ],
)
def test_bad_state_refuses_to_trade(market, reference, tmp_path, capsys, damage, message):
    state = tmp_path / "state"
    shutil.copytree(reference, state)
    st_path, j_path = state / "state.json", state / "journal.jsonl"
    extra: list[str] = []
    config = market.config
    lock = None
    if damage == "truncate_state":
        st_path.write_bytes(st_path.read_bytes()[:700])
    elif damage == "garbage_state":
        st_path.write_bytes(b"\x00\x01 not json }")
    elif damage == "version":
        st_path.write_text(st_path.read_text().replace('"version": 2', '"version": 99'))
    elif damage == "allocator_file":
        pkl = state / _state(state)["allocator"]["file"]
        blob = bytearray(pkl.read_bytes())
        blob[100] ^= 0xFF
        pkl.write_bytes(bytes(blob))
    elif damage == "payload_version":  # saved by a drb whose allocator layout was version 2
        import hashlib

        st = _state(state)
        afile = state / st["allocator"]["file"]
        data = json.loads(afile.read_text())
        entries = {k: i for i, (k, _) in enumerate(data["__map__"])}
        assert data["__map__"][entries["version"]][1] == 3
        data["__map__"][entries["version"]][1] = 2
        blob = json.dumps(data, separators=(",", ":")).encode()
        afile.write_bytes(blob)
        st["allocator"].update(sha256=hashlib.sha256(blob).hexdigest(), bytes=len(blob))
        st_path.write_text(json.dumps(st, indent=1))
    elif damage in ("cash", "position", "value"):  # valid JSON, hand-edited numbers
        st = _state(state)
        if damage == "cash":
            st["broker"]["cash"] += 1e6
        elif damage == "position":
            st["broker"]["positions"][st["assets"][0]]["size"] += 100.0
        else:
            st["broker"]["value"] += 1e6
        st_path.write_text(json.dumps(st, indent=1))
    elif damage == "journal_cut":
        j_path.write_bytes(j_path.read_bytes()[:-300])
    elif damage == "journal_edit":
        j_path.write_text(j_path.read_text().replace('"side":"buy"', '"side":"sell"', 1))
    elif damage == "no_state":
        st_path.unlink()
    elif damage == "strategy":
        extra = ["--strategy", "EqualWeight"]
    elif damage == "params":
        config = tmp_path / "paper.toml"
        config.write_text(CONFIG.replace("cooldown = 2", "cooldown = 3"))
        for name in ("history.csv", "macro.csv"):
            shutil.copy(market.folder / name, tmp_path / name)
    elif damage == "lock":
        lock = open(state / ".lock", "a+")
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    before = {p.name: p.read_bytes() for p in state.iterdir() if p.is_file()}
    args = market.args(state, None, *extra)
    args[1] = str(config)
    capsys.readouterr()
    try:
        rc = drb(args)
    finally:
        if lock is not None:
            lock.close()
    err = capsys.readouterr().err
    assert rc == 2
    lines = [x for x in err.splitlines() if x.startswith("drb paper: error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert "refusing to trade" in lines[0] or damage == "lock"
    after = {p.name: p.read_bytes() for p in state.iterdir() if p.is_file()}
    assert after == before  # nothing traded, nothing written


def test_reset_starts_afresh(market, reference, tmp_path, capsys):
    state = tmp_path / "state"
    shutil.copytree(reference, state)
    (state / "state.json").write_text("{ broken")
    assert drb(market.args(state, None, "--reset")) == 0
    archived = list(state.glob("reset-*/state.json"))
    assert len(archived) == 1 and archived[0].read_text() == "{ broken"
    _same_run(state, reference)  # a fresh run over the same bars


def test_one_growing_file_is_both_history_and_live_source(market, reference, tmp_path, capsys):
    """data.prices is the growing file itself (no --live); data.end fixes where the history ends."""
    grow, state = tmp_path / "prices.csv", tmp_path / "state"
    lines = market.lines()
    bad = lines[0][:11] + "abc" + lines[0][11 + lines[0][11:].index(","):]  # malformed: fatal in history, skipped live
    # after data.end: a row, a malformed row, the row again, a row half-appended
    grow.write_text((market.folder / "history.csv").read_text() + lines[0] + bad + lines[0] + lines[1][:15])
    shutil.copy(market.folder / "macro.csv", tmp_path / "macro.csv")
    config = tmp_path / "paper.toml"
    config.write_text(CONFIG.replace('prices = "history.csv"', f'prices = "prices.csv"\nend = "{market.hist_end}"'))

    def append_rest() -> None:
        time.sleep(0.3)
        with open(grow, "a") as fh:
            for text in [lines[1][15:], *lines[2:]]:
                fh.write(text)
                fh.flush()
                time.sleep(0.005)

    writer = threading.Thread(target=append_rest, daemon=True)
    writer.start()
    assert drb(["paper", str(config), "--state", str(state), "--poll", "0.02", "--until", market.last, "--quiet"]) == 0
    writer.join()
    err = capsys.readouterr().err
    assert f"prices.csv:{HIST + 3}: malformed row skipped: non-numeric value 'abc'" in err
    assert f"prices.csv:{HIST + 4}: duplicate row skipped" in err
    _same_run(state, reference)


def test_until_already_reached_does_nothing(market, reference, tmp_path, capsys):
    state = tmp_path / "state"
    shutil.copytree(reference, state)
    before = (state / "journal.jsonl").read_bytes()
    assert drb(market.args(state)) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (state / "journal.jsonl").read_bytes() == before


def test_max_bars_then_resume(market, reference, tmp_path):
    state = tmp_path / "state"
    for _ in range(3):
        assert drb([*market.args(state), "--max-bars", "17"]) == 0
    assert _bars(state) == 51
    assert drb(market.args(state)) == 0
    _same_run(state, reference)


def test_demo_replays_the_embedded_market(tmp_path, capsys):
    state = tmp_path / "demo"
    args = ["paper", "--demo", "--state", str(state), "--strategy", "EqualWeight", "--end", "2019-03-29",
            "--history-bars", "260", "--replay-interval", "0.01", "--poll", "0.02", "--max-bars", "6"]  # fmt: skip
    assert drb(args) == 0
    out = capsys.readouterr().out
    assert "processed 6 bars" in out
    st = _state(state)
    assert st["source"]["mode"] == "demo" and st["bars_processed"] == 6
    assert (state / "demo" / "live.csv").exists() and (state / "demo" / "history.csv").exists()
    kinds = [e["type"] for e in _journal(state)]
    assert kinds[0] == "decision" and "fill" in kinds  # initial investment at the first live bars
    assert drb([*args[:-1], "2"]) == 0  # resume: two more bars
    assert _state(state)["bars_processed"] == 8
    bad = [a if a != "2019-03-29" else "2019-04-30" for a in args]
    assert drb(bad) == 2
    assert "written by another market" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["csv", "parquet", "folder"])
def test_drb_replay_output_is_a_valid_live_source(tmp_path, fmt):
    from feeds.live import BarSource

    args = ["replay", str(tmp_path), "--end", "2018-12-31", "--history-bars", "200", "--interval", "0", "--format", fmt]
    assert drb([*args, "--bars", "3"]) == 0
    assert drb([*args, "--bars", "2"]) == 0
    live = tmp_path / {"csv": "live.csv", "parquet": "live.parquet", "folder": "live"}[fmt]
    hist = pd.read_csv(tmp_path / "history.csv", parse_dates=["date"])
    src = BarSource(live, ["equity", "bond", "commodity", "real_estate"])
    bars = src.poll()
    assert len(bars) == 5 and src.stats.malformed == src.stats.duplicate == 0  # the restart continued
    assert bars[0].date > hist["date"].iloc[-1]
    assert (tmp_path / "paper.toml").exists()


def _append_on(event: threading.Event, path: Path, text: str) -> threading.Thread:
    """Append ``text`` to ``path`` once ``event`` is set (the run logged that it is waiting)."""

    def run() -> None:
        if event.wait(600):
            with open(path, "a") as fh:
                fh.write(text)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def test_waits_for_the_first_bar_on_a_fresh_start_and_on_a_restart(market, reference, tmp_path, capsys):
    """The usual daily case: the process starts (or restarts) before the next bar exists."""
    live, state = tmp_path / "live.csv", tmp_path / "state"
    lines = market.lines()
    # fresh start: the live file does not exist yet; it appears once the run said it waits for it
    with _log_event("does not exist yet: waiting for it") as waiting:
        th = _append_on(waiting, live, market.header + "".join(lines[:20]))
        assert drb([*market.args(state, live), "--max-bars", "20"]) == 0
        th.join()
    assert waiting.is_set()
    err = capsys.readouterr().err
    assert "does not exist yet: waiting for it" in err  # a warning, shown even with --quiet
    assert _bars(state) == 20
    # restart with no new bar in the file: the run reads the 20 known rows, waits, then goes on
    with _log_event("skipped 20 rows up to") as waiting:
        th = _append_on(waiting, live, "".join(lines[20:]))
        assert drb([a for a in market.args(state, live) if a != "--quiet"]) == 0
        th.join()
    assert waiting.is_set()
    _same_run(state, reference)


@pytest.mark.parametrize("tail", ["same", "edited", "other_bar"])
def test_in_doubt_journal_tail_must_be_reproduced(market, reference, tmp_path, capsys, tail):
    """Entries journaled after the last commit (a kill inside a bar) are checked against the
    re-processed bar: identical ones are not written again; any difference refuses to trade."""
    journal = _journal(reference)
    dates = [f"{d:%Y-%m-%d}" for d in market.rows.index]
    bars_with_orders = sorted({e["bar"] for e in journal if e["type"] == "order" and dates.index(e["bar"]) > 3})
    bar = bars_with_orders[0]
    state = tmp_path / "state"
    assert drb([*market.args(state)[:-3], "--until", dates[dates.index(bar) - 1], "--quiet"]) == 0
    committed = _state(state)["journal"]
    doubt = [e for e in journal if e["bar"] == bar]
    assert doubt[0]["seq"] == committed["seq"] + 1 and any(e["type"] == "order" for e in doubt)
    if tail == "edited":
        k = next(i for i, e in enumerate(doubt) if e["type"] == "order")
        doubt[k] = {**doubt[k], "size": doubt[k]["size"] * 1.01}
    elif tail == "other_bar":
        later = bars_with_orders[1]
        doubt = [e for e in journal if e["bar"] == later]
        first = doubt[0]["seq"]
        doubt = [{**e, "seq": e["seq"] - first + committed["seq"] + 1} for e in doubt]
    with open(state / "journal.jsonl", "a") as fh:
        fh.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in doubt))
    before = (state / "journal.jsonl").read_bytes()
    capsys.readouterr()
    rc = drb(market.args(state))
    err = capsys.readouterr().err
    if tail == "same":
        assert rc == 0, err
        assert f"{len(doubt)} entries of bar {bar} were written after the last commit" in err
        _same_run(state, reference)
        return
    assert rc == 2
    lines = [x for x in err.splitlines() if x.startswith("drb paper: error:")]
    assert len(lines) == 1 and "refusing to trade" in lines[0], err
    assert ("differs from the journaled one" if tail == "edited" else "the journal has") in lines[0]
    assert (state / "journal.jsonl").read_bytes() == before
    assert _state(state)["journal"] == committed  # nothing committed


def test_bad_command_line_fails_before_creating_the_state_folder(market, tmp_path, capsys):
    state = tmp_path / "state"
    cases = [
        (["--strategy", "Nope"], "unknown strategy 'Nope'"),
        (["--live", str(tmp_path / "no" / "live.csv")], "the live source does not exist, nor its folder"),
    ]
    for extra, message in cases:
        args = market.args(state)
        if extra[0] == "--live":
            args[args.index("--live") + 1] = extra[1]
        else:
            args += extra
        capsys.readouterr()
        assert drb(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("drb paper: error:") and message in err[0], err
        assert not state.exists()
    for name in ("EqualWeight", "Nope"):
        capsys.readouterr()
        rc = drb(["paper", "--demo", "--state", str(state), "--strategy", name, "--max-bars", "1", "--end", "2019-02-28",
                  "--history-bars", "260", "--replay-interval", "0", "--poll", "0.02", "--quiet"])  # fmt: skip
        assert rc == (0 if name == "EqualWeight" else 2)
    assert "unknown strategy 'Nope'" in capsys.readouterr().err


def test_leftovers_of_interrupted_writes_are_removed(market, reference, tmp_path, capsys):
    """Temporary files of atomic writes cut by a kill are removed on the next start."""
    state = tmp_path / "state"
    assert drb([*market.args(state)[:-3], "--max-bars", "30", "--quiet"]) == 0
    for name in (".state.json.k2j3.tmp", ".allocator-00000031.json.x9a.tmp"):
        (state / name).write_bytes(b"partial")
    (state / "keep.txt").write_text("not ours")
    assert drb(market.args(state)) == 0
    assert sorted(p.name for p in state.iterdir()) == [".lock", "allocator-00000060.json", "journal.jsonl", "keep.txt", "state.json"]
    _same_run(state, reference)
    capsys.readouterr()
    assert drb(["paper", "--demo", "--live", "x.csv", "--state", str(tmp_path / "d")]) == 2
    assert "--live and --demo exclude each other" in capsys.readouterr().err


def test_stop_while_waiting_for_a_bar_reports_the_committed_state(market, reference, tmp_path, capsys):
    state = tmp_path / "state"
    shutil.copytree(reference, state)
    before = {p.name: p.read_bytes() for p in state.iterdir() if p.is_file() and p.name != ".lock"}
    sent: list[float] = []

    def interrupt(waiting: threading.Event) -> None:
        if waiting.wait(600):  # the first poll read the known rows: the run now waits 60 s for the next
            sent.append(time.monotonic())
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # as from outside

    with _log_event(f"skipped {LIVE} rows up to") as waiting:
        th = threading.Thread(target=interrupt, args=(waiting,), daemon=True)
        th.start()
        assert drb([a for a in market.args(state)[:-3]] + ["--poll", "60"]) == 0  # no --until: waits for bars
        th.join()
    assert sent and time.monotonic() - sent[0] < 30  # the signal cut the 60 s poll wait short
    out = capsys.readouterr().out
    st = _state(reference)
    assert f"processed 0 bars (SIGINT received); {LIVE} live bars in total, last {market.last}" in out
    assert f"value {st['broker']['value']:,.2f}, cash {st['broker']['cash']:,.2f}" in out
    assert {p.name: p.read_bytes() for p in state.iterdir() if p.is_file() and p.name != ".lock"} == before


@pytest.mark.parametrize("fmt", ["parquet", "folder"])
def test_parquet_file_and_folder_of_daily_files_trade_like_the_csv(market, reference, tmp_path, fmt):
    state = tmp_path / "state"
    if fmt == "parquet":
        live = tmp_path / "live.parquet"
        market.rows.to_parquet(live)
    else:
        live = tmp_path / "daily"
        live.mkdir()
        for line in market.lines():
            (live / f"{line[:10]}.csv").write_text(market.header + line)
    assert drb([*market.args(state, live), "--max-bars", "25"]) == 0
    assert drb(market.args(state, live)) == 0
    _same_run(state, reference)


def test_default_egarch_dcc_model_resumes_exactly(tmp_path):
    """The default risk model (EGARCH + DCC, refitted in the live part) pickled and resumed at
    several points gives the same trades, cash, positions and journal as one uninterrupted run."""
    bars, _ = market_table(seed=9, start="2019-01-01", end="2020-04-30")
    hist, rows = bars.iloc[:300], bars.iloc[300:330]
    header = "date," + ",".join(bars.columns) + "\n"
    (tmp_path / "history.csv").write_text(header + "".join(_line(d, r) for d, r in zip(hist.index, hist.to_numpy())))
    (tmp_path / "live.csv").write_text(header + "".join(_line(d, r) for d, r in zip(rows.index, rows.to_numpy())))
    config = tmp_path / "paper.toml"
    config.write_text('[data]\nprices = "history.csv"\n\n[execution]\nwarmup = 260\n\n'
                      '[strategy.DynamicRiskBudget]\nrefit_every = 8\nrebalance = "weekly"\ncooldown = 2\n')  # fmt: skip
    last = f"{rows.index[-1]:%Y-%m-%d}"

    def run(state: Path, *extra: str) -> None:
        args = ["paper", str(config), "--live", str(tmp_path / "live.csv"), "--state", str(state), "--poll", "0.02",
                "--until", last, "--quiet", *extra]  # fmt: skip
        assert drb(args) == 0

    def refits(state: Path) -> int:
        return int(_state(state)["allocator"]["report"]["risk_model_refits"])

    run(tmp_path / "full")
    counts = []
    for _ in range(3):
        run(tmp_path / "parts", "--max-bars", "9")
        counts.append(refits(tmp_path / "parts"))
    run(tmp_path / "parts")
    counts.append(refits(tmp_path / "parts"))
    assert counts[0] < counts[1] < counts[2]  # the risk model was refitted between restarts
    st = _state(tmp_path / "full")
    assert st["bars_processed"] == 30 and refits(tmp_path / "full") == counts[-1]
    assert sum(e["type"] == "fill" for e in _journal(tmp_path / "full")) >= 8
    _same_run(tmp_path / "parts", tmp_path / "full")


# ================================================================================== state as data
@pytest.mark.parametrize("name", sorted(__import__("strategies.bt.strategies", fromlist=["STRATEGIES"]).STRATEGIES))
def test_allocator_state_round_trips_as_data_and_continues_identically(name):
    """Every strategy's allocator, saved as JSON data after 200 bars and loaded back, takes the
    same decisions on the next 40 bars as the original, and ends in the same state."""
    import copy

    import numpy as np

    from feeds.market import MarketData
    from feeds.synthetic import synthetic_market
    from runners.engine.cerebro import build_cerebro
    from runners.live.state_codec import decode, encode
    from strategies.bt.strategies import STRATEGIES

    m = synthetic_market(seed=3, start="2019-01-01", end="2019-12-31")
    cut = 200
    classes = {a: a for a in m.prices.columns}
    head = MarketData(prices=m.prices.iloc[:cut], asset_classes=classes, vol_index=m.vol_index.iloc[:cut], macro=m.macro)
    params = {"warmup": 130, "rebalance": "weekly"}
    if name == "DynamicRiskBudget":
        params["risk_model"] = "ewma"
    strat = build_cerebro(head, STRATEGIES[name], params, analyzers=False).run()[0]
    data = json.loads(json.dumps(encode({"allocator": strat.allocator, "log": strat.rebalances}), allow_nan=False))
    loaded = decode(data)["allocator"]
    original = copy.deepcopy(strat.allocator)
    assert type(loaded) is type(original)
    closes, vol = m.prices.to_numpy(dtype=float), m.vol_index.to_numpy(dtype=float)
    weights = None
    for i in range(cut, cut + 40):
        out = []
        for alloc in (original, loaded):
            alloc.update(m.prices.index[i], closes[i], vol[i])
            dec = alloc.decide(weights if alloc.invested else None)
            out.append(None if dec is None else (dec.trigger, dec.target.tobytes()))
        assert out[0] == out[1], (name, m.prices.index[i])
        if out[0] is not None:
            weights = np.frombuffer(out[0][1])
    assert json.dumps(encode(original), allow_nan=False) == json.dumps(encode(loaded), allow_nan=False)


def test_state_codec_refuses_code_and_foreign_classes():
    from drb.errors import StateError
    from runners.live.state_codec import decode, encode

    for bad in (os.system, subprocess.Popen, lambda: 0, threading.Lock()):
        with pytest.raises(TypeError):
            encode({"x": bad})
    planted = [
        {"__obj__": "subprocess:Popen", "attrs": [], "id": 0},
        {"__obj__": "os:system", "attrs": [], "id": 0},
        {"__obj__": "builtins:eval", "attrs": [], "id": 0},
        {"__enum__": "signal:Signals", "value": 9, "id": 0},
        {"__nd__": "|O", "shape": [1], "b64": "", "id": 0},
        {"__reduce__": ["os.system", ["true"]]},
        {"__obj__": "strategies.allocators:Decision", "attrs": [["__class__", None]], "id": 0},
    ]
    for data in planted:
        with pytest.raises(StateError, match="refusing to trade"):
            decode(data, "allocator-x.json")


def _malicious_pickle(marker: Path) -> bytes:
    """A pickle that creates ``marker`` when loaded (``open(marker, 'w')``)."""
    import pickle

    class Plant:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    return pickle.dumps({"version": 1, "allocator": Plant()})


@pytest.mark.parametrize("planted", ["old_format_state", "pkl_named_in_new_state", "pkl_alone", "json_with_foreign_class"])
def test_planted_allocator_file_is_never_executed(market, reference, tmp_path, capsys, planted):
    state, marker = tmp_path / "state", tmp_path / "PWNED"
    shutil.copytree(reference, state)
    st = _state(state)
    (state / st["allocator"]["file"]).unlink()
    if planted == "json_with_foreign_class":
        blob = json.dumps({"__obj__": "builtins:open", "attrs": [["file", str(marker)]], "id": 0}).encode()
        name = "allocator-00000060.json"
    else:
        blob, name = _malicious_pickle(marker), "allocator-00000060.pkl"
    (state / name).write_bytes(blob)
    import hashlib

    st["allocator"].update(file=name, sha256=hashlib.sha256(blob).hexdigest(), bytes=len(blob))
    if planted == "old_format_state":
        st["version"] = 1
    if planted == "pkl_alone":
        (state / "state.json").unlink()
    else:
        (state / "state.json").write_text(json.dumps(st))
    capsys.readouterr()
    assert drb(market.args(state)) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("drb paper: error:")]
    assert len(lines) == 1 and "refusing to trade" in lines[0], err
    expected = {
        "old_format_state": "older drb (pickled allocator; this drb never loads pickles)",
        "pkl_named_in_new_state": "bad allocator file name 'allocator-00000060.pkl'",
        "pkl_alone": "older drb (pickled allocator",
        "json_with_foreign_class": "class 'builtins:open' is not a project class",
    }[planted]
    assert expected in lines[0]
    assert not marker.exists()  # the planted code never ran


def test_state_folder_is_private(market, reference, tmp_path):
    assert reference.stat().st_mode & 0o777 == 0o700
    for p in reference.iterdir():
        assert p.stat().st_mode & 0o777 == 0o600, p.name
    alloc = reference / _state(reference)["allocator"]["file"]
    assert alloc.suffix == ".json" and json.loads(alloc.read_text())["__map__"]
    # a folder made readable by others (or copied with a umask of 022) is made private again
    state = tmp_path / "state"
    shutil.copytree(reference, state)
    os.chmod(state, 0o755)
    for p in state.iterdir():
        os.chmod(p, 0o644)
    assert drb(market.args(state)) == 0  # nothing to do: --until reached
    assert state.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in state.iterdir()} == {p.name: 0o600 for p in state.iterdir()}


def test_live_row_dated_in_the_future_is_skipped_not_traded(market, reference, tmp_path, capsys):
    """One live row dated 2030 (a typo) is skipped with a log line; every real row is traded."""
    live, state = tmp_path / "live.csv", tmp_path / "state"
    lines = market.lines()
    typo = "2030" + lines[10][4:]
    live.write_text(market.header + "".join(lines[:10]) + typo + "".join(lines[10:]))
    capsys.readouterr()
    assert drb(market.args(state, live)) == 0
    err = capsys.readouterr().err
    assert f"live.csv:12: future row skipped: 2030{lines[10][4:10]} is " in err
    assert "(more than --max-gap-days 10)" in err
    assert _state(state)["live_source"]["future"] == 1
    _same_run(state, reference)


def test_state_codec_round_trips_data_and_keeps_shared_objects():
    import collections

    import numpy as np

    from runners.live.state_codec import decode, encode

    shared = [1, 2.5, float("nan"), None, float("-inf")]
    obj = {
        "a": shared, "b": shared, 3: (pd.NaT, pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-02 10:00", tz="UTC")),
        "series": pd.Series([1.0, 2.0], index=pd.date_range("2024-01-01", periods=2, freq="D"), name="v"),
        "frame": pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}, index=pd.Index(["r1", "r2"])),
        "deque": collections.deque([1, 2], maxlen=5), "set": {1, 2}, "f32": np.float32(1.5),
        "array": np.arange(6.0).reshape(2, 3), "objects": np.array(["x", None], dtype=object), "range": pd.RangeIndex(3),
    }  # fmt: skip
    out = decode(json.loads(json.dumps(encode(obj), allow_nan=False)))
    assert out["a"] is out["b"] and out["a"][:2] == [1, 2.5] and np.isnan(out["a"][2]) and out["a"][4] == float("-inf")
    assert out[3][0] is pd.NaT and out[3][1:] == obj[3][1:]
    pd.testing.assert_series_equal(out["series"], obj["series"])
    pd.testing.assert_frame_equal(out["frame"], obj["frame"])
    assert out["deque"] == obj["deque"] and out["deque"].maxlen == 5 and out["set"] == {1, 2}
    assert type(out["f32"]) is np.float32 and out["f32"] == 1.5
    assert out["array"].tobytes() == obj["array"].tobytes() and out["objects"].tolist() == ["x", None]
    assert out["range"].equals(obj["range"])


def test_old_import_paths_are_aliases_of_runners_live(tmp_path, capsys):
    """runners.paper, runners.replay and runners.state_codec (deprecated, one release) re-export
    the objects of runners.live, and ``python -m runners.replay``'s main is ``drb replay``."""
    import runners.live.history
    import runners.live.journal
    import runners.live.paper
    import runners.live.replay
    import runners.live.session
    import runners.live.state
    import runners.live.state_codec
    from runners import paper, replay, state_codec

    live = runners.live
    assert paper.run_paper is live.paper.run_paper and paper.PaperSession is live.session.PaperSession
    assert paper.Journal is live.journal.Journal and paper.load_state is live.state.load_state
    assert paper.load_history is live.history.load_history and paper.STATE_VERSION == live.state.STATE_VERSION
    assert replay.market_table is live.replay.market_table and replay.ReplayWriter is live.replay.ReplayWriter
    assert state_codec.encode is live.state_codec.encode and state_codec.decode is live.state_codec.decode
    for module in (paper, replay, state_codec):
        assert set(module.__all__) <= set(vars(module)), module.__name__
        assert "deprecated alias" in module.__doc__.lower()
    assert replay.main([str(tmp_path / "r"), "--end", "2018-12-31", "--history-bars", "200", "--interval", "0", "--bars", "1"]) == 0
    assert "wrote 1 bars" in capsys.readouterr().err


def test_runners_live_does_not_import_the_cli():
    """The dependency goes one way: runners.cli imports runners.live, never the reverse."""
    code = (
        "import sys, runners.live, runners.live.paper, runners.live.replay\n"
        "assert 'runners.cli' not in sys.modules, 'runners.live imported runners.cli'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_saved_allocator_state_is_reproducible():
    """Two allocators fed the same bars save byte-identical state: no buffer row left
    uninitialized (np.empty) reaches the file, which would make it differ from run to run and
    carry stray memory."""
    from feeds.synthetic import synthetic_market
    from runners.live.state_codec import encode
    from strategies.allocators import RiskParityAllocator

    m = synthetic_market(seed=3, start="2019-01-01", end="2019-06-30")
    closes = m.prices.to_numpy(dtype=float)
    saved = []
    for fill in (0.0, 1e300):  # what the memory held before the buffer was allocated
        junk = __import__("numpy").full((256, 4), fill)  # a freed block of the buffer's size
        del junk
        alloc = RiskParityAllocator(list(m.prices.columns), warmup=60)
        for i in range(100):
            alloc.update(m.prices.index[i], closes[i])
        saved.append(json.dumps(encode(alloc), allow_nan=False))
    assert saved[0] == saved[1]


def test_state_saved_under_an_old_module_path_still_loads():
    """A paper state written before the allocators moved (class named by its old module,
    now a deprecated alias) decodes to the same class; a non-project class still does not."""
    from drb.errors import StateError
    from runners.live.state_codec import decode, encode
    from strategies.allocators.dynamic import DynamicRiskBudgetAllocator

    alloc = DynamicRiskBudgetAllocator(["equity", "bond"], risk_model="ewma")
    text = json.dumps(encode(alloc), allow_nan=False)
    current = f"{DynamicRiskBudgetAllocator.__module__}:DynamicRiskBudgetAllocator"
    assert current in text
    old = json.loads(text.replace(current, "strategies.dynamic:DynamicRiskBudgetAllocator"))
    assert type(decode(old)) is DynamicRiskBudgetAllocator
    with pytest.raises(StateError):
        decode(json.loads(text.replace(current, "strategies.dynamic:np")))
