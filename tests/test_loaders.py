"""Bad input gets one clear line naming the file, column and first bad row."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from drb.errors import DataError
from feeds import align_market, load_macro, load_market, load_prices, load_vol_index


def _write(tmp_path, text, name="prices.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = "date,equity,bond\n2020-01-02,100,50\n2020-01-03,101,50.1\n2020-01-06,102,50.2\n"


def test_good_file_loads(tmp_path):
    df = load_prices(_write(tmp_path, GOOD))
    assert list(df.columns) == ["equity", "bond"]
    assert df.index.name == "date"
    assert df.loc["2020-01-03", "bond"] == pytest.approx(50.1)


def test_gzip_and_parquet(tmp_path):
    gz = tmp_path / "p.csv.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(GOOD)
    assert load_prices(gz).shape == (3, 2)
    pq = tmp_path / "p.parquet"
    load_prices(_write(tmp_path, GOOD)).to_parquet(pq)
    assert load_prices(pq).shape == (3, 2)


def test_dataframe_with_datetime_index():
    idx = pd.bdate_range("2020-01-01", periods=3)
    df = load_prices(pd.DataFrame({"equity": [1.0, 2.0, 3.0]}, index=idx))
    assert (df.index == idx).all()


@pytest.mark.parametrize(
    "text, message",
    [
        ("day,equity\n2020-01-02,1\n", r"prices\.csv: no 'date' column \(columns: day, equity\)"),
        ("date,equity\n2020-01-02,1\n2020-01-02,2\n", r"column 'date': duplicate date at line 3 \(date 2020-01-02\)"),
        (
            "date,equity\n2020-01-02,1\n2020-01-06,2\n2020-01-03,2\n",
            r"column 'date': dates not sorted ascending at line 4 \(date 2020-01-03\)",
        ),
        ("date,equity\n2020-01-02,1\nnotadate,2\n", r"column 'date': line 3 has an unparseable date 'notadate'"),
        ("date,equity\n2020-01-02,1\n2020-01-03,abc\n", r"column 'equity': non-numeric value 'abc' at line 3 \(date 2020-01-03\)"),
        ("date,equity\n2020-01-02,1\n2020-01-03,0\n", r"column 'equity': zero price 0 at line 3 \(date 2020-01-03\)"),
        ("date,equity\n2020-01-02,1\n2020-01-03,-5\n", r"column 'equity': negative price -5 at line 3"),
        ("date,equity\n2020-01-02,1\n2020-01-03,inf\n", r"column 'equity': infinite value at line 3"),
        ("date,equity,bond\n2020-01-02,1,\n2020-01-03,2,\n", r"column 'bond' has no values \(all NaN\)"),
        ("date,equity\n", r"prices\.csv: no data rows"),
    ],
)
def test_bad_price_files(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_prices(_write(tmp_path, text))


def test_missing_empty_binary(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        load_prices(tmp_path / "nope.csv")
    with pytest.raises(DataError, match=r"prices\.csv: file is empty"):
        load_prices(_write(tmp_path, ""))
    b = tmp_path / "bin.csv"
    b.write_bytes(b"\x00\x01\x02\x89PNG\x00\x00")
    with pytest.raises(DataError, match=r"bin\.csv: binary content, expected a CSV text file"):
        load_prices(b)


def test_error_is_one_line(tmp_path):
    with pytest.raises(DataError) as exc:
        load_prices(_write(tmp_path, "date,equity\n2020-01-02,1\n2020-01-03,-5\n"))
    assert "\n" not in str(exc.value)


def test_dataframe_rows_named_by_position():
    df = pd.DataFrame({"date": ["2020-01-02", "2020-01-03"], "equity": [1.0, np.nan], "bond": [1.0, -1.0]})
    with pytest.raises(DataError, match=r"DataFrame: column 'bond': negative price -1 at row 1 \(date 2020-01-03\)"):
        load_prices(df)


def test_vol_index_and_macro(tmp_path):
    v = load_vol_index(_write(tmp_path, "date,vix\n2020-01-02,15\n2020-01-03,16\n", "vix.csv"))
    assert v.name == "vol_index" and v.iloc[1] == 16
    with pytest.raises(DataError, match=r"vix2\.csv: column 'vix': zero index level"):
        load_vol_index(_write(tmp_path, "date,vix\n2020-01-02,0\n", "vix2.csv"))
    m = load_macro(_write(tmp_path, "date,pmi,cpi\n2020-01-31,50,-1\n2020-02-29,51,\n", "macro.csv"))
    assert str(m.index[0].date()) == "2020-01-01" and np.isnan(m.iloc[1, 1])
    with pytest.raises(DataError, match=r"two rows for the month 2020-01"):
        load_macro(_write(tmp_path, "date,pmi\n2020-01-01,50\n2020-01-31,51\n", "macro2.csv"))


def test_alignment_ffill_and_long_gap():
    idx = pd.bdate_range("2020-01-01", periods=40)
    eq = pd.Series(np.linspace(100, 120, 40), index=idx)
    bd = eq.copy() / 2
    bd.iloc[10:13] = np.nan
    md = align_market(pd.DataFrame({"equity": eq, "bond": bd}), ffill_limit=5)
    assert md.prices.isna().sum().sum() == 0
    assert md.prices["bond"].iloc[12] == bd.iloc[9]
    assert any("forward-filled 3" in n for n in md.notes)
    bd.iloc[10:20] = np.nan
    with pytest.raises(DataError, match=r"column 'bond': 6\+ consecutive missing days from 2020-01-15 exceed the forward-fill limit of 5"):
        align_market(pd.DataFrame({"equity": eq, "bond": bd}), ffill_limit=5)


def test_alignment_trims_to_common_span():
    idx = pd.bdate_range("2020-01-01", periods=40)
    eq = pd.Series(100.0, index=idx)
    bd = pd.Series(50.0, index=idx)
    bd.iloc[:5] = np.nan
    md = align_market(pd.DataFrame({"equity": eq, "bond": bd}))
    assert md.prices.index[0] == idx[5]
    assert any("latest starting asset: bond" in n for n in md.notes)


def test_history_too_short():
    idx = pd.bdate_range("2020-01-01", periods=30)
    with pytest.raises(DataError, match=r"history too short: 30 aligned bars, the configured windows need at least 300"):
        align_market(pd.DataFrame({"equity": 1.0, "bond": 2.0}, index=idx), min_bars=300)


def test_asset_class_mapping():
    idx = pd.bdate_range("2020-01-01", periods=10)
    df = pd.DataFrame({"SPY": 1.0, "TLT": 2.0}, index=idx)
    with pytest.raises(DataError, match=r"column 'SPY' is not an asset class"):
        align_market(df)
    md = align_market(df, asset_classes={"SPY": "equity", "TLT": "bond"})
    assert md.asset_classes == {"SPY": "equity", "TLT": "bond"}
    with pytest.raises(DataError, match=r"column 'TLT' is mapped to unknown class 'bonds'"):
        align_market(df, asset_classes={"SPY": "equity", "TLT": "bonds"})
    md = align_market(df, asset_classes={"SPY": "equity"})  # a merged file: TLT is not used
    assert md.assets == ["SPY"] and any("1 column not listed in [assets] ignored" in n for n in md.notes)


def test_load_market_paths(tmp_path):
    p = _write(tmp_path, GOOD)
    v = _write(tmp_path, "date,vix\n2020-01-03,15\n2020-01-06,16\n", "vix.csv")
    md = load_market(p, vol_index=v)
    assert np.isnan(md.vol_index.iloc[0]) and md.vol_index.iloc[1] == 15
    assert md.sources["prices"] == str(p)
