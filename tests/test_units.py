"""Durations and rates: what people write parses to the right seconds, and what we write back
parses to the very same float."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploysim.sim.durations import (
    format_duration,
    format_rate,
    humanize,
    parse_duration,
    parse_rate,
)
from deploysim.sim.errors import SimError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("25s", 25.0),
        ("10m", 600.0),
        ("4h", 14400.0),
        ("30d", 2592000.0),
        ("2w", 1209600.0),
        ("1.5h", 5400.0),
        ("1h30m", 5400.0),
        ("2d 3h", 183600.0),
        ("90", 90.0),
        ("0", 0.0),
        (" 10 min ", 600.0),
        ("3 days", 259200.0),
        (25, 25.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_reads_what_people_write(text, seconds):
    assert parse_duration(text, "f") == seconds


@pytest.mark.parametrize("bad", ["", "abc", "10x", "-5s", -1, "1h -5m", True, None, [], "inf"])
def test_parse_duration_error_names_the_field_and_examples(bad):
    with pytest.raises(SimError) as info:
        parse_duration(bad, "deploys.every")
    message = str(info.value)
    assert message.startswith("deploys.every: ")
    assert "'25s'" in message
    assert "\n" not in message


def test_parse_duration_rejects_non_finite_numbers():
    for bad in (math.inf, math.nan):
        with pytest.raises(SimError, match="horizon"):
            parse_duration(bad, "horizon")


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("40/d", 40 / 86400),
        ("120/h", 120 / 3600),
        ("2/m", 2 / 60),
        ("1/s", 1.0),
        ("4/day", 4 / 86400),
        ("3/10m", 3 / 600),
        ("40 per day", 40 / 86400),
        (0.5, 0.5),
        ("0", 0.0),
    ],
)
def test_parse_rate_reads_what_people_write(text, per_second):
    assert parse_rate(text, "r") == pytest.approx(per_second, rel=1e-15)


@pytest.mark.parametrize("bad", ["fast", "40/", "/d", "40/x", "-1/d", -2, "40/0s", False])
def test_parse_rate_error_names_the_field(bad):
    with pytest.raises(SimError, match=r"^deploys\.rate: .*'40/d'"):
        parse_rate(bad, "deploys.rate")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (25.0, "25s"),
        (3600.0, "1h"),
        (183600.0, "2d 3h"),
        (0.5, "500ms"),
        (5400.0, "1h 30m"),
        (30 * 86400.0, "30d"),
        (0.0, "0s"),
        (math.inf, "inf"),
    ],
)
def test_format_duration_is_compact(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("per_second", "text"), [(40 / 86400, "40/d"), (1.0, "1/s"), (4 / 86400, "4/d")]
)
def test_format_rate_is_compact(per_second, text):
    assert format_rate(per_second) == text


durations = st.one_of(
    st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=10**9).map(float),
    st.integers(min_value=0, max_value=10**7).map(lambda ms: ms / 1000),
)


@given(durations)
def test_format_duration_round_trips_exactly(seconds):
    text = format_duration(seconds)
    assert parse_duration(text, "f") == seconds


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_format_rate_round_trips_exactly(per_second):
    assert parse_rate(format_rate(per_second), "r") == per_second


@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.sampled_from(["w", "d", "h", "m", "s", "ms"])),
        min_size=1,
        max_size=5,
    )
)
def test_combined_durations_add_up(terms):
    size = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
    text = " ".join(f"{count}{unit}" for count, unit in terms)
    expected = sum(count * size[unit] for count, unit in terms)
    assert parse_duration(text, "f") == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (float("nan"), "-"), (0.9931, "0.993s"), (45.23, "45.2s"), (59.94, "59.9s"),
    (61.4, "1m 1s"), (5400.0, "1h 30m"), (14 * 86400.0, "14d"),
])
def test_humanize_rounds_for_a_reader(seconds, text):
    assert humanize(seconds) == text
