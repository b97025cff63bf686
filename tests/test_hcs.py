"""HCS naming: ImageXpress file names, well names, pluggable parsers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcsvfs import hcs
from hcsvfs.hcs import HCSName, parse_filename, parse_well, row_index, row_name, well_name


def test_full_imagexpress_name() -> None:
    n = parse_filename("B12_s3_w2_z004_t005.tif")
    assert n == HCSName(row=1, column=11, field=3, channel=2, z=4, t=5)
    assert n is not None and n.well == "B12"


@pytest.mark.parametrize(
    ("name", "z", "t"),
    [("A01_s1_w1.tif", 1, 1), ("A01_s1_w1_z002.TIFF", 2, 1), ("a01_S1_W1_t003", 1, 3), ("A01_s1_w1_z1_t1.ome.tif", 1, 1)],
)
def test_optional_parts_case_and_extensions(name: str, z: int, t: int) -> None:
    n = parse_filename(name)
    assert n is not None and (n.z, n.t) == (z, t)


@pytest.mark.parametrize(
    "name",
    ["A01_s1.tif", "A01_w1_s1.tif", "A01_s0_w1.tif", "A01_s1_w0.tif", "x_A01_s1_w1.tif", "A01_s1_w1_z٣.tif", "Ä01_s1_w1.tif", "A00_s1_w1.tif", "plain.tif", ""],
)
def test_names_that_are_not_hcs_images(name: str) -> None:
    assert parse_filename(name) is None


def test_unknown_parser_lists_registered_ones() -> None:
    with pytest.raises(ValueError, match="imagexpress"):
        parse_filename("A01_s1_w1.tif", parser="nope")


def test_pluggable_parser() -> None:
    pattern = re.compile(r"r(\d+)c(\d+)f(\d+)p(\d+)-ch(\d+)")  # Operetta-like: r02c03f01p05-ch2

    def operetta(name: str) -> HCSName | None:
        m = pattern.match(name)
        return None if m is None else HCSName(int(m[1]) - 1, int(m[2]) - 1, int(m[3]), int(m[5]), int(m[4]))

    hcs.register_parser("operetta-test", operetta, replace=True)
    assert "operetta-test" in hcs.parsers()
    assert parse_filename("r02c03f01p05-ch2sk1.tiff", "operetta-test") == HCSName(1, 2, 1, 2, 5)
    with pytest.raises(ValueError, match="exists"):
        hcs.register_parser("operetta-test", operetta)


def test_well_names() -> None:
    assert parse_well("A01") == (0, 0) and parse_well("p24") == (15, 23) and parse_well("AF48") == (31, 47)
    assert well_name(31, 47) == "AF48" and well_name(0, 0) == "A01"
    for bad in ("A", "01", "A0", "1A", "ABC1"):
        with pytest.raises(ValueError, match="well name"):
            parse_well(bad)
    with pytest.raises(ValueError):
        row_index("Ä")
    with pytest.raises(ValueError):
        row_name(-1)


@given(st.integers(0, 26 * 27 - 1))
def test_row_names_round_trip(i: int) -> None:
    assert row_index(row_name(i)) == i


@given(st.integers(0, 31), st.integers(0, 47), st.integers(1, 99), st.integers(1, 9), st.integers(1, 999), st.integers(1, 999))
def test_formatted_names_parse_back(r: int, c: int, s: int, w: int, z: int, t: int) -> None:
    name = f"{well_name(r, c)}_s{s}_w{w}_z{z:03d}_t{t:03d}.tif"
    assert parse_filename(name) == HCSName(r, c, s, w, z, t)
