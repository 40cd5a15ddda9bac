"""Parsing NAB files: any text either parses or fails with an InputError naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.detectors.nab_data import parse_results, parse_series, parse_windows, step_seconds, window_rows
from novacron.errors import InputError

GOOD = "timestamp,value\n2015-01-01 00:00:00,1\n2015-01-01 00:05:00,\n2015-01-01 00:10:00,3.5\n"


def test_a_good_file_parses_with_missing_values_as_nan() -> None:
    s = parse_series(GOOD, "f.csv")
    assert s.raw_timestamps[0] == "2015-01-01 00:00:00"
    assert s.raw_values == ["1", "", "3.5"]
    assert np.isnan(s.values[1])
    assert step_seconds(s.times) == 300.0


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list('timestampvalue,:-0123456789 .\n\r"\x00naNx')), max_size=120))
def test_arbitrary_text_parses_or_names_the_file(text: str) -> None:
    try:
        s = parse_series(text, "f.csv")
    except InputError as exc:
        message = str(exc)
    else:
        assert s.values.shape[0] == len(s.raw_timestamps) > 0
        return
    assert "f.csv" in message


def test_windows_map_to_rows_and_backwards_time_is_named() -> None:
    s = parse_series(GOOD, "f.csv")
    wins = parse_windows({"f.csv": [["2015-01-01 00:04:00", "2015-01-01 00:10:00"]]}, "labels")
    assert window_rows(s.times, wins["f.csv"], "f.csv") == [(1, 2)]
    back = parse_series("timestamp,value\n2015-01-01 00:05:00,1\n2015-01-01 00:00:00,2\n", "b.csv")
    with pytest.raises(InputError, match=r"b\.csv:3"):
        window_rows(back.times, [], "b.csv")


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ([], "labels"),
        ({"f.csv": "x"}, "f.csv"),
        ({"f.csv": [["2015-01-01 00:00:00"]]}, "f.csv[0]"),
        ({"f.csv": [["2015-01-02 00:00:00", "2015-01-01 00:00:00"]]}, "f.csv[0]"),
    ],
)
def test_bad_windows_are_named(raw: object, where: str) -> None:
    with pytest.raises(InputError, match=where.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")):
        parse_windows(raw, "labels")


def test_results_must_match_and_stay_in_unit_range() -> None:
    assert parse_results("timestamp,value,anomaly_score\nt,1,0.5\n", "r.csv", 1).tolist() == [0.5]
    with pytest.raises(InputError, match=r"r\.csv:2"):
        parse_results("timestamp,value,anomaly_score\nt,1,1.5\n", "r.csv", 1)
    with pytest.raises(InputError, match="2 rows"):
        parse_results("anomaly_score\n0\n0\n", "r.csv", 1)
    with pytest.raises(InputError, match="anomaly_score"):
        parse_results("a,b\n1,2\n", "r.csv", 1)
