"""Logical paths: normalisation properties, helpers, and the rooted-backend jail."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hcsvfs import paths as P
from hcsvfs.errors import InvalidPathError, StorageError

# Segments mix ordinary names with the ones normalisation must handle ("", ".", "..").
_segment = st.one_of(
    st.sampled_from(["", ".", "..", "a", "b", "A01", "x.tif", "..x", "...", ".hidden"]),
    st.text(
        alphabet=st.characters(blacklist_characters="/\x00\\", blacklist_categories=("Cs",)), min_size=1, max_size=6
    ),
)
_raw_path = st.builds(
    lambda lead, segs, trail: lead + "/".join(segs) + trail,
    st.sampled_from(["", "/", "//", "./"]),
    st.lists(_segment, min_size=1, max_size=8),
    st.sampled_from(["", "/", "/."]),
).filter(lambda s: s.strip() != "" and posixpath.normpath(s).strip() != "")  # blank paths are refused (test below)


@given(_raw_path)
def test_normalize_is_idempotent(raw: str) -> None:
    once = P.normalize(raw)
    assert P.normalize(once) == once


@given(_raw_path)
def test_normalize_leaves_no_empty_or_dot_segments(raw: str) -> None:
    out = P.normalize(raw)
    assert "//" not in out
    if out not in (".", "/"):
        assert "." not in out.split("/")[1 if out.startswith("/") else 0 :]
        assert not out.endswith("/")


@given(_raw_path)
def test_absolute_stays_absolute_and_relative_stays_relative(raw: str) -> None:
    out = P.normalize(raw)
    assert out.startswith("/") == raw.startswith("/")


@given(_raw_path)
def test_dotdot_only_survives_as_a_leading_run(raw: str) -> None:
    parts = P.normalize(raw).split("/")
    kept = [p for p in parts if p == ".."]
    assert parts[: len(kept)] == kept  # "a/../b" cancels; only unmatched leading ".." stay
    if raw.startswith("/"):
        assert not kept  # "/.." is "/"


@given(_raw_path)
def test_normalize_agrees_with_posix_lexical_semantics(raw: str) -> None:
    # For paths without "..", posixpath.normpath is the reference (except "//" roots, which POSIX keeps).
    if ".." in raw.split("/"):
        return
    expected = os.path.normpath(raw) if os.sep == "/" else raw
    if expected.startswith("//"):
        expected = "/" + expected.lstrip("/")
    assert P.normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a//b/./c", "a/b/c"),
        ("a/b/../c", "a/c"),
        ("./a/", "a"),
        ("/", "/"),
        ("/..", "/"),
        ("/../a", "/a"),
        (".", "."),
        ("a/..", "."),
        ("../x", "../x"),
        ("a/../../x", "../x"),
        ("/workspace/A01/step1_out/x.tif", "/workspace/A01/step1_out/x.tif"),
    ],
)
def test_normalize_examples(raw: str, expected: str) -> None:
    assert P.normalize(raw) == expected


def test_normalize_takes_pathlike() -> None:
    assert P.normalize(PurePosixPath("a/b/./c")) == "a/b/c"
    assert P.normalize(Path("/tmp/x/../y")) == "/tmp/y"


@pytest.mark.parametrize("bad", ["", "   ", "a\x00b", "\x00", "\r/", " /./", "./\t"])
def test_normalize_rejects_empty_and_nul(bad: str) -> None:
    with pytest.raises(InvalidPathError) as info:
        P.normalize(bad)
    assert isinstance(info.value, ValueError) and isinstance(info.value, StorageError)
    assert ("NUL" in str(info.value)) == ("\x00" in bad)


@pytest.mark.parametrize("bad", [None, 3, b"bytes/path", ["a"], 1.5])
def test_normalize_rejects_wrong_types(bad: object) -> None:
    with pytest.raises(InvalidPathError) as info:
        P.normalize(bad)  # type: ignore[arg-type]
    assert type(bad).__name__ in str(info.value)


def test_helpers() -> None:
    assert P.join("a", "b/", "./c") == "a/b/c"
    assert P.join("a", "/abs", "c") == "/abs/c"
    assert P.parent("a/b/c.tif") == "a/b"
    assert P.parent("top.tif") == "."
    assert P.parent("/top.tif") == "/"
    assert P.parent(".") == "." and P.parent("/") == "/"
    assert P.basename("a/b/c.tif") == "c.tif"
    assert P.ancestors("a/b/c/x.npy") == ["a", "a/b", "a/b/c"]
    assert P.ancestors("/w/A01/x") == ["/w", "/w/A01"]
    assert P.ancestors("x") == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a/img.OME.TIF", ("img", ".ome.tif")),
        ("img.ome.tiff", ("img", ".ome.tiff")),
        ("img.tif", ("img", ".tif")),
        ("noext", ("noext", "")),
        (".ome.tif", (".ome", ".tif")),  # a bare compound suffix is a hidden file, not an OME-TIFF
        ("a.tar.gz", ("a", ".tar.gz")),
        ("x.NPY", ("x", ".npy")),
    ],
)
def test_split_ext(name: str, expected: tuple[str, str]) -> None:
    assert P.split_ext(name) == expected


def test_is_within() -> None:
    assert P.is_within("a/b", "a") and P.is_within("a", "a")
    assert not P.is_within("ab", "a")
    assert P.is_within("x", ".") and not P.is_within("../x", ".") and not P.is_within("/x", ".")
    assert P.is_within("/x/y", "/") and not P.is_within("x", "/")


# ---------------------------------------------------------------- the jail
_inside_seg = st.sampled_from(["a", "b", "..", ".", "c.tif", "A01"])


@given(st.lists(_inside_seg, min_size=1, max_size=10), st.booleans())
def test_jail_never_maps_outside_root(
    tmp_path_factory: pytest.TempPathFactory, segs: list[str], absolute: bool
) -> None:
    root = tmp_path_factory.getbasetemp() / "jail"
    rp = P.RootedPath(root)
    raw = "/".join(segs)
    if absolute:
        raw = str(root) + "/" + raw
    try:
        phys = rp.physical(raw)
    except InvalidPathError as exc:
        assert exc.path is not None  # every rejection names the path
        return
    resolved = Path(os.path.normpath(phys))
    assert resolved == root or root in resolved.parents


@pytest.mark.parametrize("bad", ["..", "../x", "a/../../x", "a/b/../../../x"])
def test_jail_rejects_dotdot_escapes(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidPathError) as info:
        P.RootedPath(tmp_path).physical(bad)
    assert bad in str(info.value) and "root" in str(info.value)


def test_jail_absolute_paths(tmp_path: Path) -> None:
    rp = P.RootedPath(tmp_path / "r")
    assert rp.physical(str(tmp_path / "r" / "a" / "x.tif")) == tmp_path / "r" / "a" / "x.tif"
    assert rp.physical(str(tmp_path / "r")) == tmp_path / "r"
    with pytest.raises(InvalidPathError, match="outside"):
        rp.physical(str(tmp_path / "elsewhere" / "x.tif"))
    with pytest.raises(InvalidPathError, match="outside"):
        rp.physical(str(tmp_path / "r-sibling"))  # a prefix of the name is not "inside"


def test_jail_rejects_symlinks_leading_out(tmp_path: Path) -> None:
    root, outside = tmp_path / "r", tmp_path / "out"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    (root / "dangling").symlink_to(outside / "not-yet")
    (root / "inner").symlink_to(root)
    rp = P.RootedPath(root)
    for bad in ("link", "link/x.tif", "dangling"):
        with pytest.raises(InvalidPathError, match="symlink"):
            rp.physical(bad)
    assert rp.physical("inner/x") == root / "inner" / "x"  # a link that stays inside is fine


def test_jail_root_reached_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(real)
    rp = P.RootedPath(alias)
    assert rp.physical("x") == alias / "x"
    assert rp.physical(str(real / "x")) == alias / "x"  # the root's real path counts as inside


def test_unrooted_follows_cwd_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rp = P.RootedPath()
    monkeypatch.chdir(tmp_path)
    assert rp.physical("a/x") == tmp_path / "a" / "x"
    assert rp.physical("/abs/x") == Path("/abs/x")
    assert rp.physical("../up") == tmp_path / ".." / "up"  # no jail without an explicit root
    assert not rp.jailed and "cwd" in repr(rp)


@given(_raw_path)
def test_parent_and_basename_rebuild_the_path(raw: str) -> None:
    p = P.normalize(raw)
    if p in (".", "/") or p.split("/")[-1] == "..":
        return
    assert P.join(P.parent(p), P.basename(p)) == p
    assert P.parent(p) == (os.path.dirname(p) or ".")


_edgy = st.lists(st.sampled_from(["a", "..", ".", ".hcsvfs-tmp-x", "n" * 300, "b c"]), min_size=1, max_size=5).map("/".join)


@given(st.one_of(_raw_path, _edgy))
def test_checked_is_normalize_less_what_no_backend_stores(raw: str) -> None:
    """checked() returns what normalize() does, or refuses exactly: '..' out of the root, a reserved or an over-long name."""
    try:
        expected = P.normalize(raw)
    except InvalidPathError:
        with pytest.raises(InvalidPathError):
            P.checked(raw)
        return
    parts = expected.split("/")
    refused = expected == ".." or expected.startswith("../") or any(
        P.is_reserved_name(part) or len(os.fsencode(part)) > 255 for part in parts
    )
    if refused:
        with pytest.raises(InvalidPathError):
            P.checked(raw)
    else:
        assert P.checked(raw) == expected
