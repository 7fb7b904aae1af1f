"""pyfolio tear sheets: inputs for every asset, rendering in worker processes, a clean console."""

from __future__ import annotations

import pandas as pd
import pytest
from _fake_run import ASSETS, write_fake_run

from drb.errors import DataError
from runners.tearsheets import load_tearsheet_inputs, write_tearsheets

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    # short series: a tear sheet needs ~6 months for its rolling panels; 140 days keeps it fast
    return write_fake_run(tmp_path_factory.mktemp("ts"), n_days=140,
                          strategies=("DynamicRiskBudget", "EqualWeight"))


def test_inputs_hold_every_asset_and_cash(short_run):
    rets, pos, txns = load_tearsheet_inputs(short_run, "DynamicRiskBudget")
    assert list(pos.columns) == [*ASSETS, "cash"]
    assert pos.index.equals(rets.index) and str(rets.index.tz) == "UTC"
    assert set(txns["symbol"]) == set(ASSETS)  # not only the last feed
    assert str(txns.index.tz) == "UTC"
    # positions are money values: they add up to the portfolio value
    values = pd.read_csv(short_run / "values.csv", index_col="date", parse_dates=True)["DynamicRiskBudget"]
    assert pos.sum(axis=1).to_numpy() == pytest.approx(values.dropna().to_numpy(), rel=1e-9)


def test_inputs_errors(short_run, tmp_path):
    with pytest.raises(DataError, match="no column 'Nope'"):
        load_tearsheet_inputs(short_run, "Nope")
    bad = tmp_path / "bad"
    write_fake_run(bad, n_days=30, strategies=("DynamicRiskBudget",), with_metrics=False)
    (bad / "positions" / "DynamicRiskBudget.csv").unlink()
    with pytest.raises(DataError, match="positions"):
        load_tearsheet_inputs(bad, "DynamicRiskBudget")


def test_parallel_tearsheets_leave_the_console_clean(short_run, capfd):
    timings: dict[str, float] = {}
    paths = write_tearsheets(short_run, n_jobs=2, timings=timings)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no pyfolio HTML reprs, no deprecation warnings
    assert list(paths) == ["DynamicRiskBudget", "EqualWeight"]
    for name, p in paths.items():
        assert p == short_run / "tearsheets" / f"{name}.png"
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 100_000
        from PIL import Image

        with Image.open(p) as im:
            assert im.height > 4 * im.width  # one tall sheet: header, returns, positions, txns
        assert timings[name] > 0


def test_worker_errors_come_back_typed_and_quiet(tmp_path, capfd):
    run = write_fake_run(tmp_path / "run", n_days=140, strategies=("DynamicRiskBudget",), with_metrics=False)
    txn = run / "transactions" / "DynamicRiskBudget.csv"
    pd.read_csv(txn).drop(columns=["price"]).to_csv(txn, index=False)
    with pytest.raises(DataError, match="price"):
        write_tearsheets(run, n_jobs=1)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert not (run / "tearsheets" / "DynamicRiskBudget.png").exists()
