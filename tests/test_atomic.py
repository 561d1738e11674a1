"""medgan_aug.utils.atomic (and atomic_torch_save on top of it): all or nothing, modes that follow the umask
as open/mkdir do, and temporary names short enough for any legal target name."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
import torch

from medgan_aug.utils.atomic import (
    atomic_dir,
    atomic_path,
    atomic_save_image,
    atomic_write_text,
    current_umask,
    publish_modes,
)
from medgan_aug.utils.serialization import atomic_torch_save, safe_torch_load


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o077, 0o000, 0o022, 0o027], ids=["umask077", "umask000", "umask022", "umask027"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_every_writer_follows_the_umask_like_open_and_mkdir(tmp_path, umask):
    """Under umask 077 nothing is readable by group or others; under 022 files are 0644, folders 0755."""
    assert current_umask() == umask
    text = atomic_write_text(tmp_path / "a.txt", "hello")
    torch_file = atomic_torch_save({"x": torch.arange(3)}, tmp_path / "ckpt.pt")
    with atomic_path(tmp_path / "raw.bin") as tmp:
        assert _mode(tmp) == 0o666 & ~umask  # from the start: never wider, never narrower
        tmp.write_bytes(b"\x00\x01")
    with atomic_dir(tmp_path / "folder") as folder:
        assert _mode(folder) == 0o777 & ~umask
        (folder / "sub").mkdir()
        (folder / "sub" / "f.txt").write_text("x")
        (folder / "g.txt").write_text("y")
        atomic_torch_save({"y": 1}, folder / "sub" / "m.pt")
    for path in (
        text,
        torch_file,
        tmp_path / "raw.bin",
        tmp_path / "folder/sub/f.txt",
        tmp_path / "folder/sub/m.pt",
        tmp_path / "folder/g.txt",
    ):
        assert _mode(path) == 0o666 & ~umask, (path, oct(_mode(path)))
    for path in (tmp_path / "folder", tmp_path / "folder/sub"):
        assert _mode(path) == 0o777 & ~umask, (path, oct(_mode(path)))
    assert torch.equal(safe_torch_load(torch_file)["x"], torch.arange(3))
    assert (tmp_path / "raw.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "ckpt.pt", "folder", "raw.bin"]
    private = Path(tempfile.mkdtemp(dir=tmp_path))  # 0700, and a 0600 file in it
    os.close(tempfile.mkstemp(dir=private)[0])
    publish_modes(private)
    assert {_mode(p) for p in (private, *private.iterdir())} == {0o777 & ~umask, 0o666 & ~umask}


def test_current_umask_without_proc_reads_it_and_restores_it(monkeypatch, umask):
    real_open = open

    def no_proc(file, *args, **kwargs):
        if str(file).startswith("/proc/"):
            raise FileNotFoundError(errno.ENOENT, "no /proc here", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_proc)
    assert current_umask() == umask and current_umask() == umask  # the second read sees it restored
    assert os.umask(umask) == umask


@pytest.mark.parametrize("length", [246, 250, 255])
def test_any_legal_target_name_can_be_written(tmp_path, length):
    """NAME_MAX is 255 bytes: temporary names that add ~20 bytes to the target's failed for 236-255."""
    name = "n" * (length - 4) + ".png"
    from PIL import Image

    atomic_save_image(Image.new("L", (4, 4)), tmp_path / name)
    with atomic_dir(tmp_path / ("d" * length)) as folder:
        (folder / "x.txt").write_text("x")
    with atomic_dir(tmp_path / ("d" * length)) as folder:  # replaces the first: the old one moved aside
        (folder / "y.txt").write_text("y")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "d" * length])
    assert os.listdir(tmp_path / ("d" * length)) == ["y.txt"]
    assert Image.open(tmp_path / name).size == (4, 4)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = atomic_write_text(tmp_path / "config.json", "old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            assert tmp.parent == tmp_path and tmp.name.startswith(".config.json~") and ".tmp" in tmp.name
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_dir(tmp_path / "bundle") as folder:
            (folder / "x").write_text("half")
            raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_atomic_dir_replaces_a_folder_only_when_the_new_one_is_complete(tmp_path):
    with atomic_dir(tmp_path / "out") as folder:
        (folder / "old.txt").write_text("1")
    with pytest.raises(ValueError):
        with atomic_dir(tmp_path / "out") as folder:
            (folder / "new.txt").write_text("2")
            raise ValueError
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["old.txt"]
    with atomic_dir(tmp_path / "out") as folder:
        (folder / "new.txt").write_text("2")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the old folder, moved aside, is gone


# ------------------------------------------------------------------------------ full, read-only disks


def _refuse(code: int):
    def write(*args, **kwargs):
        raise OSError(code, os.strerror(code))  # as a failed write(2)/close(2): no file name

    return write


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_an_os_error_without_a_file_name_names_the_target(code, tmp_path, monkeypatch):
    target = atomic_write_text(tmp_path / "config.json", "old")
    monkeypatch.setattr(Path, "write_text", _refuse(code))
    with pytest.raises(OSError) as caught:
        atomic_write_text(target, "new")
    assert (caught.value.errno, caught.value.filename) == (code, str(target))
    assert caught.value.strerror == os.strerror(code) and caught.value.__cause__.filename is None
    with pytest.raises(OSError) as caught:
        with atomic_dir(tmp_path / "bundle") as folder:
            (folder / "configs").mkdir()
            (folder / "configs" / "metadata.json").write_text("{}")
    assert (caught.value.errno, caught.value.filename) == (code, str(tmp_path / "bundle"))
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_an_os_error_naming_a_temporary_file_names_the_target(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        with atomic_dir(tmp_path / "bundle") as folder:
            open(folder / "configs" / "metadata.json", "w")  # noqa: SIM115 (the folder is missing)
    assert caught.value.filename == str(tmp_path / "bundle" / "configs" / "metadata.json")
    with pytest.raises(FileNotFoundError) as caught:
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.unlink()
            os.stat(tmp)
    assert caught.value.filename == str(tmp_path / "a.txt")
    other = tmp_path / "elsewhere.txt"
    with pytest.raises(FileNotFoundError) as caught:
        with atomic_path(tmp_path / "a.txt"):
            other.read_text()
    assert caught.value.filename == str(other)  # not ours: unchanged
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_during_torch_save_is_an_os_error_naming_the_file(tmp_path, request):
    path = atomic_torch_save({"x": torch.arange(3)}, tmp_path / "ckpt.pt")
    before = path.read_bytes()
    request.getfixturevalue("torch_disk_full")
    with pytest.raises(OSError) as caught:
        atomic_torch_save({"x": torch.zeros(10_000)}, path)
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(path))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_torch_s_inline_container_error_becomes_an_os_error(tmp_path, monkeypatch):
    path = atomic_torch_save({"x": torch.arange(3)}, tmp_path / "ckpt.pt")
    before = path.read_bytes()

    def unexpected_pos(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", unexpected_pos)
    for free, code in ((0, errno.ENOSPC), (10**12, errno.EIO)):
        monkeypatch.setattr(shutil, "disk_usage", lambda p, free=free: shutil._ntuple_diskusage(1, 1, free))
        with pytest.raises(OSError) as caught:
            atomic_torch_save({"x": torch.zeros(10)}, path)
        assert (caught.value.errno, caught.value.filename) == (code, str(path))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
    monkeypatch.setattr(torch, "save", lambda obj, f: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):  # any other RuntimeError is not a disk's
        atomic_torch_save({"x": torch.zeros(10)}, path)
