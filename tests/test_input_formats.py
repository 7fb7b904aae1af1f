"""Input formats seen in the wild (issue 14): other delimiters, integer and zoned dates, newest-first
files, coarser-than-daily data, merged price files; and files that are not CSV at all."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from drb.errors import DataError, DataWarning
from feeds import load_market, load_prices, load_vol_index

PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "alice:x:1000:1000:Alice Example,,,:/home/alice:/bin/bash\n"
)


def _write(tmp_path, text, name="prices.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _daily_rows(n=12, start="2020-01-02"):
    dates = pd.bdate_range(start, periods=n)
    return dates, [(d, 100 + i, 50 + i / 10) for i, d in enumerate(dates)]


def test_non_csv_file_is_named_never_quoted(tmp_path):
    p = _write(tmp_path, PASSWD, "passwd")
    with pytest.raises(DataError) as exc:
        load_prices(p)
    msg = str(exc.value)
    assert msg == f"{p}: not a CSV with a 'date' column"
    for secret in ("root", "bash", "alice", "x:0"):
        assert secret not in msg.replace(str(p), "")


def test_real_passwd_file_is_not_quoted():
    from pathlib import Path

    passwd = Path("/etc/passwd")
    if not passwd.is_file():
        pytest.skip("no /etc/passwd here")
    with pytest.raises(DataError) as exc:
        load_prices(passwd)
    assert str(exc.value) == "/etc/passwd: not a CSV with a 'date' column"


def test_data_like_header_without_date_lists_columns(tmp_path):
    with pytest.raises(DataError, match=r"prices\.csv: no 'date' column \(columns: day, SPY, TLT\)"):
        load_prices(_write(tmp_path, "day,SPY,TLT\n2020-01-02,1,2\n"))


def test_unreadable_parquet_is_not_quoted(tmp_path):
    p = tmp_path / "p.parquet"
    p.write_text("date,secret\n2020-01-02,hunter2\n")
    with pytest.raises(DataError, match=r"p\.parquet: cannot be read as a Parquet file \(\w+\)$"):
        load_prices(p)


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_other_delimiters(tmp_path, sep):
    dates, rows = _daily_rows()
    text = sep.join(["date", "SPY", "TLT"]) + "\n"
    text += "".join(sep.join([f"{d:%Y-%m-%d}", str(a), f"{b:.2f}"]) + "\n" for d, a, b in rows)
    df = load_prices(_write(tmp_path, text))
    assert list(df.columns) == ["SPY", "TLT"]
    assert df["TLT"].iloc[1] == pytest.approx(50.1)


def test_semicolon_with_decimal_comma(tmp_path):
    df = load_prices(_write(tmp_path, "date;SPY;TLT\n2020-01-02;100,5;50,25\n2020-01-03;101,5;50,5\n"))
    assert df.loc["2020-01-03", "SPY"] == pytest.approx(101.5)
    assert df.loc["2020-01-02", "TLT"] == pytest.approx(50.25)


def test_yyyymmdd_integer_dates(tmp_path):
    df = load_prices(_write(tmp_path, "date,SPY\n20200102,100\n20200103,101\n20200106,102\n"))
    assert [f"{d:%Y-%m-%d}" for d in df.index] == ["2020-01-02", "2020-01-03", "2020-01-06"]
    with pytest.raises(DataError, match=r"column 'date': line 3 has 20201301, not a date \(numeric dates must be YYYYMMDD\)"):
        load_prices(_write(tmp_path, "date,SPY\n20201231,100\n20201301,101\n", "bad.csv"))
    with pytest.raises(DataError, match=r"line 2 has 1577923200, not a date"):
        load_prices(_write(tmp_path, "date,SPY\n1577923200,100\n1578009600,101\n", "epoch.csv"))


def test_times_and_time_zones_become_local_dates(tmp_path):
    texts = {
        "time.csv": "date,SPY\n2020-01-02 16:00:00,100\n2020-01-03 16:00:00,101\n2020-01-06 16:00:00,102\n",
        "tz.csv": "date,SPY\n2020-01-02T16:00:00-05:00,100\n2020-01-03T16:00:00-05:00,101\n"
        "2020-01-06T16:00:00-05:00,102\n",
        # daylight saving starts on 2020-03-08: two UTC offsets in one column
        "dst.csv": "date,SPY\n2020-03-05T16:00:00-05:00,100\n2020-03-06T16:00:00-05:00,101\n"
        "2020-03-09T16:00:00-04:00,102\n",
        "late.csv": "date,SPY\n2020-01-02T21:30:00-05:00,100\n2020-01-03T21:30:00-05:00,101\n"
        "2020-01-06T21:30:00-05:00,102\n",
    }
    for name, text in texts.items():
        with pytest.warns(DataWarning, match=name.replace(".", r"\.")):
            df = load_prices(_write(tmp_path, text, name))
        assert df.index.tz is None and (df.index == df.index.normalize()).all(), name
        assert df.index[0].day in (2, 5) and df.index[-1].day in (6, 9), name
    with pytest.raises(DataError, match=r"intraday\.csv: column 'date': duplicate date once times are dropped at line 3"):
        load_prices(_write(tmp_path, "date,SPY\n2020-01-02 10:00,1\n2020-01-02 16:00,2\n", "intraday.csv"))


def test_times_and_zones_align_with_a_plain_vol_index(tmp_path):
    dates, rows = _daily_rows(30)
    prices = "date,equity,bond\n" + "".join(f"{d:%Y-%m-%d}T16:00:00-05:00,{a},{b}\n" for d, a, b in rows)
    vix = "date,vix\n" + "".join(f"{d:%Y-%m-%d},{15 + i % 3}\n" for i, d in enumerate(dates))
    with pytest.warns(DataWarning, match="timestamps with a time zone reduced to their local dates"):
        md = load_market(_write(tmp_path, prices), vol_index=_write(tmp_path, vix, "vix.csv"))
    assert md.vol_index.notna().all() and len(md.prices) == 30
    assert any("reduced to their local dates" in n for n in md.notes)


def test_newest_first_is_sorted_with_a_warning(tmp_path):
    dates, rows = _daily_rows(5)
    text = "date,SPY,TLT\n" + "".join(f"{d:%Y-%m-%d},{a},{b}\n" for d, a, b in reversed(rows))
    p = _write(tmp_path, text)
    with pytest.warns(DataWarning, match=rf"{p}: dates run newest first; rows sorted oldest first"):
        df = load_prices(p)
    assert df.index.is_monotonic_increasing and df["SPY"].iloc[0] == 100
    # messages still give the line of the file
    bad = "date,SPY\n2020-01-07,3\n2020-01-06,-2\n2020-01-03,1\n"
    with pytest.warns(DataWarning), pytest.raises(DataError, match=r"negative price -2 at line 3 \(date 2020-01-06\)"):
        load_prices(_write(tmp_path, bad, "bad.csv"))


@pytest.mark.parametrize("freq, spacing, kind", [("W-FRI", 5, "weekly"), ("BME", 21, "monthly")])
def test_coarser_than_daily_is_rejected(tmp_path, freq, spacing, kind):
    dates = pd.date_range("2015-01-01", periods=60, freq=freq)
    text = "date,SPY,TLT\n" + "".join(f"{d:%Y-%m-%d},{100 + i},{50 + i}\n" for i, d in enumerate(dates))
    p = _write(tmp_path, text)
    with pytest.raises(DataError) as exc:
        load_prices(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: column 'date': rows are ")
    assert f"i.e. {kind} data; daily data (one row per trading day) is required" in msg
    assert abs(float(msg.split("rows are ")[1].split()[0]) - spacing) <= 2
    with pytest.raises(DataError, match="weekly data"):
        weekly = pd.Series(np.arange(1.0, 11.0), index=pd.date_range("2020-01-03", periods=10, freq="W-FRI"))
        load_vol_index(weekly.rename("vix"))


def test_daily_with_holidays_is_daily(tmp_path):
    dates = pd.bdate_range("2020-01-01", periods=40).delete([3, 4, 10, 20])
    df = load_prices(pd.DataFrame({"SPY": np.linspace(1, 2, len(dates))}, index=dates))
    assert len(df) == 36


def test_merged_file_uses_only_the_listed_columns(tmp_path):
    dates, rows = _daily_rows(30)
    text = "date,SPY,TLT,note,GLD,XLE\n" + "".join(
        f"{d:%Y-%m-%d},{a},{b},text,{a + 1},\n" for d, a, b in rows
    )
    p = _write(tmp_path, text)
    with pytest.warns(DataWarning, match=r"prices\.csv: 3 columns not listed in \[assets\] ignored"):
        md = load_market(p, asset_classes={"SPY": "equity", "TLT": "bond"})
    assert md.assets == ["SPY", "TLT"]
    assert sum("columns not listed in [assets] ignored" in n for n in md.notes) == 1


@pytest.mark.parametrize("assets_from", ["[assets]", "--assets"])
def test_mistyped_ticker_is_named(tmp_path, assets_from):
    dates, rows = _daily_rows(30)
    p = _write(tmp_path, "date,SPY,TLT\n" + "".join(f"{d:%Y-%m-%d},{a},{b}\n" for d, a, b in rows))
    with pytest.raises(DataError) as exc:
        load_market(p, asset_classes={"SPX": "equity", "TLT": "bond"}, assets_from=assets_from)
    assert str(exc.value) == f"{assets_from} SPX: no such column in {p} (did you mean 'SPY'?)"


def test_no_mapping_hint_fits_how_the_mapping_is_given(tmp_path):
    from feeds import align_market

    idx = pd.bdate_range("2020-01-01", periods=10)
    df = pd.DataFrame({"SPY": 1.0, "TLT": 2.0}, index=idx)
    with pytest.raises(DataError, match=r"with --assets COLUMN=CLASS") as exc:
        align_market(df, assets_from="--assets")
    assert "[assets]" not in str(exc.value)
    with pytest.raises(DataError, match=r"in the config's \[assets\] table"):
        align_market(df)
    with pytest.raises(DataError, match=r"unknown class 'bonds' by --assets \(did you mean 'bond'\?\)"):
        align_market(df, asset_classes={"SPY": "equity", "TLT": "bonds"}, assets_from="--assets")


def test_clean_file_warns_nothing(tmp_path):
    dates, rows = _daily_rows(10)
    p = _write(tmp_path, "date,SPY\n" + "".join(f"{d:%Y-%m-%d},{a}\n" for d, a, _ in rows))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_prices(p)


@pytest.mark.realdata
def test_real_merged_file_and_its_weekly_resample(real_data_dir, tmp_path):
    prices = real_data_dir / "prices_daily.csv.gz"
    classes = {"SPY": "equity", "TLT": "bond", "DBC": "commodity", "VNQ": "real_estate"}
    with pytest.warns(DataWarning, match=r"12 columns not listed in \[assets\] ignored"):
        md = load_market(prices, asset_classes=classes)
    assert md.assets == list(classes) and len(md.prices) > 4000
    weekly = md.prices.resample("W-FRI").last()
    p = tmp_path / "weekly.csv"
    weekly.rename_axis("date").to_csv(p)
    with pytest.raises(DataError, match=r"weekly\.csv: column 'date': rows are 5 business days apart"):
        load_market(p, asset_classes=classes)


@pytest.mark.parametrize(
    "first_line",
    [
        "root:x:0:0:root,,,:/root:/bin/bash",
        "secret-token=abc123,other=def456",
        "BEGIN RSA PRIVATE KEY; MIIEpAIBAAKCAQEA",
        '{"password": "hunter2", "user": "bob"}',
    ],
)
def test_first_line_of_other_files_never_echoed(tmp_path, first_line):
    p = _write(tmp_path, first_line + "\nmore,stuff\n", "f.txt")
    with pytest.raises(DataError) as exc:
        load_prices(p)
    assert str(exc.value) == f"{p}: not a CSV with a 'date' column"
