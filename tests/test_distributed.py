"""Dask execution: a real LocalCluster (2 worker processes) gives the serial results; a killed run resumes."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from drb.errors import ConfigError, DRBError
from runners.experiments.montecarlo import run_montecarlo
from runners.experiments.sweep import GridSpec, run_sweep
from runners.metrics import METRIC_COLUMNS
from runners.parallel import PartStore, auto_batch_size, dask_client, run_tasks, worker_warm_up

REPO = Path(__file__).resolve().parents[1]
STRATS = ["DynamicRiskBudget", "EqualWeight", "RiskParity"]


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, silence_logs=40,
    )  # fmt: skip
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def test_montecarlo_on_local_cluster_equals_serial(client, small_market, config, tmp_path):
    serial = run_montecarlo(small_market, config, 4, tmp_path / "serial", strategies=STRATS, progress=False, figures=False)
    dist = run_montecarlo(small_market, config, 4, tmp_path / "dask", strategies=STRATS, client=client, progress=False, figures=False)
    a = pd.read_csv(tmp_path / "serial" / "paths.csv").drop(columns="seconds")
    b = pd.read_csv(tmp_path / "dask" / "paths.csv").drop(columns="seconds")
    assert len(a) == 4 * 3 and set(a["source"]) == {"synthetic", "bootstrap"}
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    pd.testing.assert_frame_equal(serial.summary, dist.summary, check_exact=False, rtol=1e-12, atol=1e-15)
    manifest = json.loads((tmp_path / "dask" / "montecarlo.json").read_text())
    assert manifest["execution"] == {"mode": "local", "workers": 2} and manifest["status"] == "complete"


def test_sweep_on_local_cluster_equals_serial(client, small_market, config, tmp_path):
    spec = GridSpec(axes={"smoothing": [0.05, 0.25], "rc_threshold": [0.10, 0.15]}, params={"risk_model": "ewma"}, baselines=["EqualWeight"])
    a = run_sweep(small_market, config, spec, tmp_path / "s", progress=False).sweep
    b = run_sweep(small_market, config, spec, tmp_path / "d", progress=False, client=client).sweep
    cols = ["point", "smoothing", "rc_threshold", *METRIC_COLUMNS]
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=False, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("where", ["serial", "cluster"])
def test_failed_tasks_are_recorded_and_the_rest_finish(where, client, tmp_path):
    got: dict[int, float] = {}
    tasks = [(i, (float(v),)) for i, v in enumerate([4.0, -1.0, 9.0, 16.0])]
    info = run_tasks(math.sqrt, tasks, on_result=got.__setitem__, client=client if where == "cluster" else None, progress=False)
    assert got == {0: 2.0, 2: 3.0, 3: 4.0}
    assert info.done == 3 and len(info.failures) == 1
    f = info.failures[0]
    assert (f.key, f.error) == (1, "ValueError") and "domain" in f.message


@pytest.mark.parametrize("batch_size", [None, 2, 3])
def test_batched_tasks_stream_every_result_and_each_failure(batch_size, client):
    """Tasks run in batches on the cluster (None: guided sizes, 5 tasks a batch first here): every
    task's result comes back under its own key and a failing task fails alone (the rest of its
    batch is delivered)."""
    got: dict[int, float] = {}
    values = [4.0, -1.0, 9.0, 16.0, 25.0, -4.0] + [float(i * i) for i in range(6, 40)]
    tasks = [(i, (v,)) for i, v in enumerate(values)]
    info = run_tasks(math.sqrt, tasks, on_result=got.__setitem__, client=client, progress=False, batch_size=batch_size)
    assert got == {i: math.sqrt(v) for i, v in enumerate(values) if v >= 0}
    assert info.done == 38 and sorted(f.key for f in info.failures) == [1, 5]
    assert all(f.error == "ValueError" and "domain" in f.message for f in info.failures)
    with pytest.raises(ConfigError, match="batch_size"):
        run_tasks(math.sqrt, tasks, on_result=got.__setitem__, client=client, progress=False, batch_size=0)


def test_batched_montecarlo_paths_equal_serial(client, small_market, config):
    """The Monte Carlo task in batches of 2 on two workers gives the serial rows exactly."""
    from runners.experiments.montecarlo import mc_runs, run_path

    runs, _ = mc_runs(config, STRATS)
    setup = {"seed": 5, "source": "both", "start": "2018-01-02", "end": "2019-06-28", "block": 20.0, "runs": runs,
             "broker": dict(config.broker), "engine": "fast", "benchmark": "EqualWeight", "risk_free": 0.0}  # fmt: skip
    shared = {"base": small_market, "setup": setup}
    tasks = [(i, (i,)) for i in range(4)]
    serial: dict[int, pd.DataFrame] = {}
    dist: dict[int, pd.DataFrame] = {}
    run_tasks(run_path, tasks, on_result=serial.__setitem__, shared=shared, progress=False)
    info = run_tasks(run_path, tasks, on_result=dist.__setitem__, client=client, shared=shared, progress=False, batch_size=2)
    assert info.done == 4 and not info.failures and sorted(dist) == [0, 1, 2, 3]
    for i in range(4):
        pd.testing.assert_frame_equal(serial[i].drop(columns="seconds"), dist[i].drop(columns="seconds"), check_exact=True)


def test_auto_batch_size_keeps_four_batches_per_thread():
    assert auto_batch_size(24, 2) == 3  # 8 batches of 3 paths: 4 per worker
    assert auto_batch_size(5, 2) == 1 and auto_batch_size(0, 2) == 1
    assert auto_batch_size(10_000, 64) == 16  # capped: a result reaches the disk at most 16 tasks late
    for n in range(1, 300):
        for threads in (1, 2, 8):
            b = auto_batch_size(n, threads)
            assert 1 <= b <= 16 and -(-n // b) >= min(n, 4 * threads)


def test_worker_warm_up_reports_failures_and_never_raises():
    assert worker_warm_up(["runners.experiments.sweep:warm_up", "drb.errors:no_such_function", "no_such_module:f"]) == [
        "drb.errors:no_such_function",
        "no_such_module:f",
    ]


def test_dask_client_modes():
    with dask_client(None, 1) as c:
        assert c is None  # one worker: serial, no cluster
    with pytest.raises(ConfigError, match="tcp://HOST:PORT"):
        with dask_client("localhost:8786"):
            pass
    with pytest.raises(ConfigError, match="--workers"):
        with dask_client(None, 0):
            pass
    with pytest.raises(DRBError, match="cannot reach"):
        with dask_client("tcp://127.0.0.1:9", timeout=2):
            pass


def test_part_store_refuses_orphans_and_cleans_temporaries(tmp_path):
    store = PartStore(tmp_path, "montecarlo", {"a": 1})
    store.write("path-000000", pd.DataFrame({"x": [0.1 + 0.2]}))
    (store.parts / ".path-000001.csv.abc123.tmp").write_text("torn")
    again = PartStore(tmp_path, "montecarlo", {"a": 1})
    assert again.resumed and again.done() == {"path-000000"}
    assert again.read("path-000000")["x"].iloc[0] == 0.1 + 0.2  # floats round-trip exactly
    assert not list(again.parts.glob(".*.tmp"))
    (tmp_path / "montecarlo.json").unlink()
    with pytest.raises(ConfigError, match="missing"):
        PartStore(tmp_path, "montecarlo", {"a": 1})


def _drb(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    return subprocess.Popen(
        [sys.executable, "-m", "runners.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill reaches the cluster's workers too
    )


def _wait_group_gone(pgid: int, timeout: float = 120) -> None:
    """Wait until no process of the group ``pgid`` is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    pytest.fail(f"processes of group {pgid} still alive {timeout} s after SIGKILL")


def test_killed_run_resumes(tmp_path):
    out = tmp_path / "mc"
    n = 8
    # EWMA: the resume mechanics, not the risk model, are under test (three runs of 8 paths)
    args = ["montecarlo", "--demo", "--start", "2018-01-02", "--end", "2019-06-28", "--paths", str(n),
            "--strategies", ",".join(STRATS), "--risk-model", "ewma", "--workers", "2", "--out", str(out),
            "--quiet", "--no-figures"]  # fmt: skip
    parts_dir = out / "parts" / "montecarlo"
    proc = _drb(args)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if parts_dir.exists() and len(list(parts_dir.glob("path-*.csv"))) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail(f"run ended before it could be killed: {proc.communicate()[1][-500:]}")
            time.sleep(0.02)
        else:
            pytest.fail("no path finished in 600 s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    _wait_group_gone(proc.pid)  # no worker of the killed run writes a part any more
    before = {p: p.stat().st_mtime_ns for p in parts_dir.glob("path-*.csv")}
    assert 3 <= len(before) < n, "the kill came too late to test a resume"
    for p in before:  # every part left behind is complete
        assert len(pd.read_csv(p)) == len(STRATS)
    assert json.loads((out / "montecarlo.json").read_text())["status"] == "running"

    proc = _drb(args)
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-800:]
    assert f"resumed: {len(before)} paths were already done" in stdout
    assert all(p.stat().st_mtime_ns == before[p] for p in before)  # finished paths not recomputed
    resumed = pd.read_csv(out / "paths.csv")
    assert sorted(set(resumed["path"])) == list(range(n))

    # identical to an uninterrupted serial run of the same command
    ref = tmp_path / "ref"
    from runners.cli import main

    code = main([*args[: args.index("--workers")], "--workers", "1", "--out", str(ref), "--quiet", "--no-figures"])
    assert code == 0
    a = pd.read_csv(ref / "paths.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(resumed.drop(columns="seconds"), a, check_exact=False, rtol=1e-12, atol=1e-15)
    assert json.loads((out / "montecarlo.json").read_text())["status"] == "complete"


def _port_8787_taken() -> socket.socket | None:
    """Hold port 8787 (Dask's default HTTP port) unless something else already does."""
    sock = socket.socket()
    try:
        sock.bind(("", 8787))
        sock.listen()
    except OSError:
        sock.close()
        return None  # taken already: the same situation
    return sock


def _probe() -> tuple[bool, list[str | None], bool]:
    import os as _os
    import sys as _s

    import dask

    threads = [_os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")]
    imported = "runners.parallel" in _s.modules and "wave" in _s.modules
    return imported, threads, dask.config.get("distributed.worker.profile.enabled")


def test_local_cluster_warms_up_workers_and_prints_no_port_in_use_warning(capfd):
    """One LocalCluster (started next to another Dask: port 8787 taken): ``warm_up`` callables run in
    each worker as it starts (before any task), a failing one does not stop the worker, every worker
    has one BLAS / OpenMP / numba thread and no profiler; no "Port 8787 is already in use" warning
    (no dashboard, the scheduler's HTTP server on a free local port)."""
    import operator
    import warnings

    holder = _port_8787_taken()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with dask_client(None, 2, warm_up=("drb.errors:no_such_function", "wave:Error")) as client:
                assert client.submit(operator.add, 1, 2).result() == 3
                assert client.dashboard_link is None or ":8787" not in client.dashboard_link
                seen = client.run(_probe)
    finally:
        if holder is not None:
            holder.close()
    assert not [w for w in caught if "already in use" in str(w.message)]
    assert "already in use" not in capfd.readouterr().err
    assert len(seen) == 2
    for imported, threads, profiling in seen.values():
        assert imported and threads == ["1", "1", "1", "1"] and profiling is False
    with pytest.raises(ConfigError, match="module:function"):
        with dask_client(None, 2, warm_up=("runners.experiments.sweep.warm_up",)):
            pass


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM), made with the openssl tool."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl tool to make a certificate")
def test_tls_scheduler_is_reached_with_certificates(tmp_path):
    """``tls://`` used to fail with a TypeError; with --tls-* files it connects (a local TLS
    scheduler with a self-signed certificate); without any certificate it is one ConfigError."""
    import operator

    from distributed import LocalCluster
    from distributed.security import Security

    cert, key = _self_signed(tmp_path)
    c, k = str(cert), str(key)
    server = Security(tls_ca_file=c, tls_scheduler_cert=c, tls_scheduler_key=k, tls_worker_cert=c, tls_worker_key=k,
                      tls_client_cert=c, tls_client_key=k, require_encryption=True)  # fmt: skip
    cluster = LocalCluster(n_workers=1, processes=False, protocol="tls", security=server, host="127.0.0.1",
                           dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})  # fmt: skip
    try:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        with dask_client(address, tls_ca_file=c, tls_cert=c, tls_key=k, timeout=60) as client:
            assert client.submit(operator.mul, 6, 7).result() == 42
        with pytest.raises(ConfigError, match="no TLS certificates; give --tls-ca-file"):
            with dask_client(address, timeout=10):
                pass
    finally:
        cluster.close()


def test_tls_options_are_checked():
    with pytest.raises(ConfigError, match="--tls-ca-file needs a tls:// scheduler address, got tcp://"):
        with dask_client("tcp://127.0.0.1:1", tls_ca_file="ca.pem"):
            pass
    with pytest.raises(ConfigError, match="--tls-cert nope.pem: no such file"):
        with dask_client("tls://127.0.0.1:1", tls_cert="nope.pem"):
            pass
    with pytest.raises(ConfigError, match="need --scheduler tls://"):
        with dask_client(None, 2, tls_key="k.pem"):
            pass
