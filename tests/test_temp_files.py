"""medgan_aug.utils.temp_files: short temporary names that still say their target, and which orphans are
removed (never a live writer's file, a user's dotfile or another target's temporary file)."""

from __future__ import annotations

import os

import pytest

from medgan_aug.utils.atomic import atomic_path
from medgan_aug.utils.temp_files import (
    HEAD_BYTES,
    is_temp_name_of,
    orphan_temp_files,
    remove_orphan_temp_files,
    temp_name,
)

LONG = "a" * 246 + ".npz"  # 250 bytes: legal (NAME_MAX 255), too long for a name that adds ~20 to it
LONG_OTHER = "a" * 246 + ".np2"  # the same first HEAD_BYTES bytes as LONG, another file
ACCENTED = "é" * 125 + ".pt"  # 253 bytes in UTF-8: the head is cut at a character boundary


@pytest.mark.parametrize(
    "name,suffix,regex,ext",
    [
        ("ckpt_00000012.pt", None, r"ckpt_\d{8}\.pt", ".pt"),
        ("losses.csv", None, r"losses\.csv", ".csv"),
        ("plot", ".png", r"plot", ".png"),
        ("notes.an_extension_far_too_long", None, None, ""),
        (LONG, None, None, ".npz"),
        (ACCENTED, None, None, ".pt"),
    ],
)
def test_the_names_atomic_path_really_uses_are_short_and_say_their_target(tmp_path, name, suffix, regex, ext):
    seen = []
    for _ in range(20):  # 20 draws of the random part
        with atomic_path(tmp_path / name, suffix=suffix) as tmp:
            seen.append(tmp.name)
            tmp.write_bytes(b"x")
    assert len(set(seen)) == 20 and all(len(os.fsencode(n)) <= 80 for n in seen), seen
    assert all(is_temp_name_of(n, names=[name]) for n in seen), seen
    assert all(n.endswith(".tmp" + ext) for n in seen), seen
    if regex is not None:  # the files a run writes: matched by pattern (any iteration's checkpoint)
        assert all(is_temp_name_of(n, targets=[regex]) for n in seen), seen
    assert not any(is_temp_name_of(n, targets=[r"other\.pt"], names=["other.pt"]) for n in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing left


def test_a_cut_name_is_told_apart_by_its_digest():
    name = temp_name(LONG, ".npz")
    assert name.startswith("." + "a" * HEAD_BYTES + "~")
    assert is_temp_name_of(name, names=[LONG]) and not is_temp_name_of(name, names=[LONG_OTHER])
    assert not is_temp_name_of(name, targets=[r"a+\.npz", r"a+"])  # a cut head never matches a pattern
    accented = temp_name(ACCENTED, ".pt")
    assert accented.startswith("." + "é" * (HEAD_BYTES // 2) + "~")  # 2 bytes each: 20 of them
    assert is_temp_name_of(accented, names=[ACCENTED])


def test_only_orphans_of_the_given_targets_are_removed(tmp_path):
    orphans = [
        temp_name("losses.csv", ".csv"),
        temp_name("losses.csv", ""),  # atomic_path(..., suffix="") writes this
        temp_name("ckpt_00000003.pt", ".pt"),
        temp_name(LONG, ".npz"),
        ".losses.csv.a1b2c3d4.tmp.csv",  # the older form, left by an older version
        ".ckpt_00000003.pt.___x_9z_.tmp.pt",
    ]
    kept = [
        "losses.csv",
        temp_name("notes.txt", ".txt"),  # another target
        temp_name(LONG_OTHER, ".np2"),  # another target with the same head
        ".losses.csv~0000000z.a1b2c3d4.tmp.csv",  # not a digest
        ".losses.csv~00000000.a1b2c3d4.tmp.csv",  # not losses.csv's digest
        temp_name("losses.csv", ".csv") + ".bak",  # renamed by hand
        ".losses.csv.a1b2.tmp.csv",  # 4 random characters: not mkstemp's
        ".losses.csv.A1B2C3D4.tmp.csv",  # mkstemp draws lower case only
        ".notes.txt.a1b2c3d4.tmp.txt",  # another target
        "losses.csv.a1b2c3d4.tmp.csv",  # no leading dot
        ".bashrc",
        ".mydata.npz",
    ]
    for name in orphans + kept:
        (tmp_path / name).write_text("x")
    folder_orphan, link_orphan = temp_name("ckpt_00000006.pt", ".pt"), temp_name("ckpt_00000009.pt", ".pt")
    (tmp_path / folder_orphan).mkdir()  # a folder
    (tmp_path / link_orphan).symlink_to(tmp_path / "losses.csv")
    targets = [r"losses\.csv", r"ckpt_\d{8}\.pt"]
    removed = remove_orphan_temp_files(tmp_path, targets, names=[LONG])
    assert [p.name for p in removed] == sorted(orphans)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {*kept, folder_orphan, link_orphan}
    assert (tmp_path / "losses.csv").read_text() == "x"  # the link's target is untouched
    assert orphan_temp_files(tmp_path / "missing", targets) == []


def test_a_live_writer_s_temporary_file_is_kept(tmp_path):
    """A writer holds its temporary file: another process starting on the same target leaves it alone."""
    with atomic_path(tmp_path / LONG) as tmp:
        tmp.write_bytes(b"half")
        assert remove_orphan_temp_files(tmp_path, names=[LONG]) == [] and tmp.read_bytes() == b"half"
    assert (tmp_path / LONG).read_bytes() == b"half"
    stale = tmp_path / temp_name(LONG, ".npz")
    stale.write_bytes(b"orphan")  # nobody holds it: what a killed writer leaves
    assert remove_orphan_temp_files(tmp_path, names=[LONG]) == [stale]
