"""Units of the migration model: parsed and printed the way people write them; bad values say why."""

from __future__ import annotations

import pytest

from chaintrace.model.units import (
    UnitError,
    format_bitrate,
    format_duration,
    format_rate,
    format_size,
    parse_duration,
    parse_fraction,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4GiB", 4 * 2**30), ("4G", 4 * 2**30), ("4 GiB", 4 * 2**30), ("512MiB", 512 * 2**20),
        ("512m", 512 * 2**20), ("1.5GiB", 3 * 2**29), ("4GB", 4 * 10**9), ("4096", 4096),
        ("64KiB", 65536), ("1TiB", 2**40), ("10B", 10),
    ],
)
def test_parse_size_binary_and_decimal(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1Gbit/s", 125e6), ("1Gbps", 125e6), ("100Mbit/s", 12.5e6), ("100Mb/s", 12.5e6),
        ("200MB/s", 200e6), ("200MBps", 200e6), ("128MiB/s", 128 * 2**20), ("10 Gbit/s", 1.25e9),
        ("1.5GB/s", 1.5e9), ("800kbit/s", 100e3), ("64B/s", 64),
    ],
)
def test_parse_rate_bits_lower_bytes_upper(text: str, expected: float) -> None:
    assert parse_rate(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("300ms", 0.3), ("600s", 600), ("10min", 600), ("1.5h", 5400), ("250us", 250e-6), ("2 s", 2)],
)
def test_parse_duration(text: str, expected: float) -> None:
    assert parse_duration(text) == pytest.approx(expected)


def test_parse_fraction_accepts_share_and_percent() -> None:
    assert parse_fraction("0.25") == 0.25
    assert parse_fraction("30%") == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("parse", "text", "says"),
    [
        (parse_size, "4XB", "unknown unit"),
        (parse_size, "lots", "expected a number"),
        (parse_size, "-4GiB", "expected a number"),
        (parse_rate, "1Gbit", "unknown unit"),
        (parse_rate, "200MB", "unknown unit"),
        (parse_rate, "fast", "expected a number"),
        (parse_duration, "300", "give a unit"),
        (parse_duration, "3 fortnights", "give a unit"),
        (parse_fraction, "1.5", "between 0 and 1"),
        (parse_fraction, "half", "expected e.g."),
    ],
)
def test_bad_values_raise_a_one_line_value_error(parse, text: str, says: str) -> None:
    with pytest.raises(UnitError) as caught:
        parse(text)
    assert isinstance(caught.value, ValueError)
    assert says in str(caught.value)
    assert repr(text) in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(4 * 2**30, "4 GiB"), (512 * 2**20, "512 MiB"), (37.5 * 2**20, "37.5 MiB"), (100, "100 B"),
     (1536, "1.5 KiB")],
)
def test_format_size(value: float, expected: str) -> None:
    assert format_size(value) == expected


def test_format_rates_and_durations() -> None:
    assert format_rate(125e6) == "125 MB/s"
    assert format_rate(1.25e9) == "1.25 GB/s"
    assert format_bitrate(125e6) == "1 Gbit/s"
    assert format_bitrate(12.5e6) == "100 Mbit/s"
    assert format_duration(0.3) == "300 ms"
    assert format_duration(12.44) == "12.4 s"
    assert format_duration(603) == "10 min 3 s"
    assert format_duration(600) == "10 min"
    assert format_duration(250e-6) == "250 us"


@pytest.mark.parametrize("text", ["4GiB", "512MiB", "37.5MiB"])
def test_size_round_trips_through_its_printed_form(text: str) -> None:
    assert parse_size(format_size(parse_size(text)).replace(" ", "")) == parse_size(text)
