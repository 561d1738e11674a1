"""medgan_aug.utils.temp_files: the temporary names of atomic writes, and which orphans are removed."""

from __future__ import annotations

import pytest

from medgan_aug.utils.atomic import atomic_path
from medgan_aug.utils.temp_files import orphan_temp_files, remove_orphan_temp_files, temp_name_pattern


@pytest.mark.parametrize(
    "name,suffix", [("ckpt_00000012.pt", None), ("losses.csv", None), ("plot.png", ".png")]
)
def test_pattern_matches_the_names_atomic_path_really_uses(tmp_path, name, suffix):
    seen = []
    for _ in range(20):  # 20 draws of mkstemp's random part
        with atomic_path(tmp_path / name, suffix=suffix) as tmp:
            seen.append(tmp.name)
            tmp.write_bytes(b"x")
    target = name.replace(".", r"\.").replace("00000012", r"\d{8}")
    assert all(temp_name_pattern(target).match(n) for n in seen), seen
    assert not temp_name_pattern(r"other\.pt").match(seen[0])


def test_only_orphans_of_the_given_targets_are_removed(tmp_path):
    orphans = [
        ".losses.csv.a1b2c3d4.tmp.csv",
        ".losses.csv.e5f6g7h8.tmp",  # atomic_path(..., suffix="") writes this
        ".ckpt_00000003.pt.___x_9z_.tmp.pt",
    ]
    kept = [
        "losses.csv",
        ".losses.csv.a1b2.tmp.csv",  # 4 random characters: not mkstemp's
        ".losses.csv.A1B2C3D4.tmp.csv",  # mkstemp draws lower case only
        ".notes.txt.a1b2c3d4.tmp.txt",  # another target
        "losses.csv.a1b2c3d4.tmp.csv",  # no leading dot
    ]
    for name in orphans + kept:
        (tmp_path / name).write_text("x")
    (tmp_path / ".ckpt_00000006.pt.abcdefgh.tmp.pt").mkdir()  # a folder
    (tmp_path / ".ckpt_00000009.pt.abcdefgh.tmp.pt").symlink_to(tmp_path / "losses.csv")
    targets = [r"losses\.csv", r"ckpt_\d{8}\.pt"]
    removed = remove_orphan_temp_files(tmp_path, targets)
    assert [p.name for p in removed] == sorted(orphans)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {*kept, ".ckpt_00000006.pt.abcdefgh.tmp.pt", ".ckpt_00000009.pt.abcdefgh.tmp.pt"}
    assert (tmp_path / "losses.csv").read_text() == "x"  # the link's target is untouched
    assert orphan_temp_files(tmp_path / "missing", targets) == []
