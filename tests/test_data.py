"""MedMNISTDataset: real files, item form, and one clear error per kind of bad input."""

from __future__ import annotations

import io
import re
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import DataLoader

from medgan_aug.data.medmnist import MedMNISTDataset, load_medmnist_npz, official_file
from medgan_aug.utils.errors import MedMNISTFileError
from medgan_aug.utils.npz_stream import npy_header

CHEST_NAMES = [
    "atelectasis",
    "cardiomegaly",
    "effusion",
    "infiltration",
    "mass",
    "nodule",
    "pneumonia",
    "pneumothorax",
    "consolidation",
    "edema",
    "emphysema",
    "fibrosis",
    "pleural",
    "hernia",
]


def write_npz(path: Path, n: int = 6, size: int = 28, width: int = 14, **override: np.ndarray) -> Path:
    """A tiny MedMNIST-format file; ``override`` replaces or (with None) drops keys."""
    rng = np.random.RandomState(0)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.randint(0, 256, (n, size, size)).astype(np.uint8)
        arrays[f"{split}_labels"] = rng.randint(0, 2, (n, width)).astype(np.uint8)
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize("fixture,size", [("chest28_path", 28), ("chest64_path", 64)])
def test_real_items_have_the_documented_form(request, fixture, size):
    path = request.getfixturevalue(fixture)
    counts = {s: len(MedMNISTDataset(path=path, split=s)) for s in ("train", "val", "test")}
    assert counts == {"train": 691, "val": 76, "test": 233}
    ds = MedMNISTDataset(path=path, split="train")
    assert ds.size == size and ds.task == "multi-label, binary-class" and ds.label_names == CHEST_NAMES
    assert ds.images.dtype == np.uint8 and ds.images.shape == (691, size, size)
    item = ds[3]
    assert set(item) == {"image", "label"}
    assert item["image"].dtype == torch.float32 and item["image"].shape == (1, size, size)
    assert item["label"].dtype == torch.float32 and item["label"].shape == (14,)
    assert torch.equal(item["image"][0], torch.from_numpy(ds.images[3]).float() / 255)
    assert torch.equal(item["label"], torch.from_numpy(ds.labels[3]).float())
    # positives per finding, train, as documented in ../shared/data/README.md
    assert ds.targets.sum(0).astype(int).tolist() == [57, 67, 120, 116, 23, 32, 10, 31, 26, 29, 34, 23, 21, 9]
    images = torch.stack([ds[i]["image"] for i in range(len(ds))])
    assert 0.0 <= images.min() < 0.05 and 0.95 < images.max() <= 1.0


def test_dataloader_collates_and_indices_select_rows(chest28_path):
    full = MedMNISTDataset(path=chest28_path, split="test")
    rows = np.array([5, 0, 17])
    sub = MedMNISTDataset(path=chest28_path, split="test", indices=rows)
    assert len(sub) == 3 and np.array_equal(sub.images, full.images[rows])
    batch = next(iter(DataLoader(sub, batch_size=3)))
    assert batch["image"].shape == (3, 1, 28, 28) and batch["label"].shape == (3, 14)
    with pytest.raises(ValueError, match=r"rows in \[0, 233\)"):
        MedMNISTDataset(path=chest28_path, split="test", indices=[0, 233])


def test_binary_flag_gives_single_float_label(pneumonia_path):
    ds = MedMNISTDataset(flag="pneumoniamnist", path=pneumonia_path, split="train")
    assert len(ds) == 4682 and ds.label_names == ["normal", "pneumonia"] and ds.num_labels == 1
    assert ds[0]["label"].shape == (1,) and ds.targets.sum() == 3469


def test_multiclass_flag_gives_one_hot(tmp_path):
    path = write_npz(
        tmp_path / "blood.npz",
        width=1,
        **{
            f"{s}_labels": np.array([[0], [3], [7], [1], [2], [5]], np.uint8)
            for s in ("train", "val", "test")
        }
        | {f"{s}_images": np.zeros((6, 28, 28, 3), np.uint8) for s in ("train", "val", "test")},
    )
    ds = MedMNISTDataset(flag="bloodmnist", path=path)
    assert ds.num_labels == 8 and ds[1]["label"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    assert ds[0]["image"].shape == (3, 28, 28)


def test_transform_is_applied(chest28_path):
    ds = MedMNISTDataset(path=chest28_path, split="val", transform=lambda d: {**d, "image": d["image"] * 0})
    assert ds[0]["image"].abs().sum() == 0


@pytest.mark.parametrize(
    "override,message",
    [
        ({"val_images": None}, r"missing key\(s\) \['val_images'\]"),
        ({"val_images": np.zeros((6, 28, 28), np.float32)}, "dtype float32, expected uint8"),
        ({"val_images": np.zeros((6, 28, 30), np.uint8)}, r"shape \(6, 28, 30\), expected square"),
        ({"val_images": np.zeros((6, 784), np.uint8)}, r"shape \(6, 784\)"),
        ({"val_labels": np.zeros((6, 13), np.uint8)}, "has 13 columns but flag 'chestmnist'"),
        ({"val_labels": np.zeros((5, 14), np.uint8)}, r"shape \(5, 14\), expected \(6, L\)"),
        ({"val_labels": np.full((6, 14), 2, np.uint8)}, r"values in \[2, 2\], expected 0..1"),
        ({"val_labels": np.zeros((6, 14), np.float32)}, "expected an integer type"),
    ],
)
def test_bad_layout_is_named(tmp_path, override, message):
    path = write_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(MedMNISTFileError, match=message) as info:
        MedMNISTDataset(path=path, split="val")
    assert str(path) in str(info.value)


def test_truncated_and_non_zip_files(tmp_path):
    good = write_npz(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    for path in (truncated, text):
        with pytest.raises(MedMNISTFileError, match="not a readable MedMNIST .npz") as info:
            load_medmnist_npz(path, "train")
        assert str(path) in str(info.value)


def test_bad_arguments(tmp_path, chest28_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MedMNISTDataset(path=tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        MedMNISTDataset(path=chest28_path, split="validation")
    with pytest.raises(ValueError, match="unknown MedMNIST flag 'chestmnst'"):
        MedMNISTDataset(flag="chestmnst", path=chest28_path)
    with pytest.raises(ValueError, match="3D MedMNIST"):
        MedMNISTDataset(flag="organmnist3d", path=chest28_path)
    with pytest.raises(ValueError, match="size=32 is not offered"):
        MedMNISTDataset(path=chest28_path, size=32)
    with pytest.raises(MedMNISTFileError, match="images are 28x28 but size=64"):
        MedMNISTDataset(path=chest28_path, size=64)
    with pytest.raises(ValueError, match="not both"):
        MedMNISTDataset(path=chest28_path, root=tmp_path)


def test_missing_official_file_says_where_and_what(tmp_path):
    target, url, md5 = official_file("chestmnist", 64, tmp_path)
    assert target.name == "chestmnist_64.npz" and md5 == "9de6cd0b934ebb5b7426cfba5efbae16"
    with pytest.raises(FileNotFoundError) as info:
        MedMNISTDataset(root=tmp_path, size=64)
    message = str(info.value)
    assert str(target) in message and url in message and md5 in message


def test_official_file_md5_mismatch_names_both_sums(tmp_path, chest28_path):
    placed = tmp_path / "chestmnist.npz"
    placed.write_bytes(chest28_path.read_bytes())
    with pytest.raises(MedMNISTFileError, match="MD5 mismatch") as info:
        MedMNISTDataset(root=tmp_path)
    message = str(info.value)
    assert "02c8a6516a18b556561a56cbdd36c4a8" in message  # medmnist's sum
    import hashlib

    assert hashlib.md5(chest28_path.read_bytes()).hexdigest() in message  # the file's sum


def test_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    """The real medmnist download path, with name resolution cut off as on a machine without network."""

    def offline(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    with pytest.raises(FileNotFoundError) as info:
        MedMNISTDataset(flag="pneumoniamnist", root=tmp_path / "medmnist", download=True)
    message = str(info.value)
    assert "offline" in message and "pneumoniamnist.npz" in message
    from medmnist.info import INFO

    assert INFO["pneumoniamnist"]["MD5"] in message and str(tmp_path / "medmnist") in message


def test_packaged_sample_is_the_real_nih1000_file(chest28_path, chest28_shared_path):
    assert chest28_path.read_bytes() == chest28_shared_path.read_bytes()
    ds = MedMNISTDataset(sample="nih1000", split="train")
    assert (len(ds), ds.size, ds.num_labels, ds.source) == (691, 28, 14, chest28_path)
    assert ds.labels.sum(0).tolist() == [57, 67, 120, 116, 23, 32, 10, 31, 26, 29, 34, 23, 21, 9]
    readme = (chest28_path.parent / "README.md").read_text()
    assert "ChestX-ray8" in readme and "NIH Clinical Center" in readme and "691, val 76, test 233" in readme


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"sample": "nih2000"}, "unknown sample 'nih2000'; the package ships: nih1000"),
        ({"sample": "nih1000", "path": "x.npz"}, "give one data source"),
        ({"sample": "nih1000", "flag": "pneumoniamnist"}, "sample 'nih1000' is 'chestmnist' data"),
        ({"sample": "nih1000", "size": 64}, "ships at 28 px only"),
    ],
)
def test_bad_sample_requests_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        MedMNISTDataset(**kwargs)


def test_altered_sample_file_is_refused(tmp_path, monkeypatch):
    from medgan_aug.data import samples

    fake = tmp_path / "sample_files" / "nih1000_chestmnist.npz"
    fake.parent.mkdir()
    fake.write_bytes(b"not the sample")
    monkeypatch.setattr(samples.resources, "files", lambda package: tmp_path)
    with pytest.raises(MedMNISTFileError, match="has MD5 .* expected e7ea54fd0749ec33ebe08bfc2136a7ad"):
        samples.sample_path("nih1000")
    fake.unlink()
    with pytest.raises(MedMNISTFileError, match="missing from this installation"):
        samples.sample_path("nih1000")


# ------------------------------------------------------------------------- headers, folders, empty splits


def _one_line_error(capsys, code: int, command: str) -> str:
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith(f"medgan-aug {command}: error: ") and "Traceback" not in err, err
    return err


def _crafted_npz(path: Path, key: str, shape: tuple[int, ...]) -> Path:
    """A MedMNIST-format file whose ``key`` member has a header declaring ``shape`` and 100 bytes of data."""
    write_npz(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            if name == key:
                archive.writestr(f"{name}.npy", npy_header(np.uint8, shape) + bytes(100))
            else:
                buffer = io.BytesIO()
                np.save(buffer, array)
                archive.writestr(f"{name}.npy", buffer.getvalue())
    return path


def test_a_header_claiming_a_huge_array_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    """(10**12, 28, 28) uint8 is 713 TiB: refused from the header, in `train` and `data info`, naming the
    file and the array, without asking numpy for the memory."""
    from medgan_aug.cli import main

    crafted = _crafted_npz(tmp_path / "huge.npz", "train_images", (10**12, 28, 28))

    def no_allocation(*args, **kwargs):
        raise AssertionError("np.load read an array whose header was not checked")

    monkeypatch.setattr(np.lib.format, "read_array", no_allocation)
    for argv in (
        ["data", "info", "--path", str(crafted)],
        ["train", "--path", str(crafted), "--out", str(tmp_path / "run"), "--threads", "1", "--no-progress"],
    ):
        err = _one_line_error(capsys, main(argv), argv[0])
        assert str(crafted) in err and "'train_images'" in err and "(1000000000000, 28, 28)" in err, err
        assert "713.0 TiB" in err and "100 bytes" in err, err
    assert not (tmp_path / "run").exists()


def test_an_array_larger_than_the_available_memory_is_refused(tmp_path, capsys, monkeypatch):
    from medgan_aug.cli import main

    path = write_npz(tmp_path / "small.npz", n=6)  # test_images: 6 x 28 x 28 = 4704 bytes
    monkeypatch.setattr("medgan_aug.data.npz_arrays.available_memory", lambda: 4000)
    with pytest.raises(MedMNISTFileError, match=r"small\.npz: array 'test_images' .*more than the 3\.9 KiB"):
        load_medmnist_npz(path, "test")
    err = _one_line_error(capsys, main(["data", "info", "--path", str(path)]), "data")
    assert "'train_images'" in err and "memory available" in err


def test_a_folder_given_as_path_is_named_a_folder(tmp_path, capsys):
    from medgan_aug.cli import main

    folder = tmp_path / "data.npz"
    folder.mkdir()
    with pytest.raises(MedMNISTFileError, match="is a directory, not a MedMNIST .npz file"):
        MedMNISTDataset(path=folder)
    for argv in (["data", "info", "--path", str(folder)], ["train", "--path", str(folder), "--out", "x"]):
        err = _one_line_error(capsys, main(argv), argv[0])
        assert f"{folder} is a directory" in err and "does not exist" not in err


def test_an_empty_train_split_names_the_file_and_the_split(tmp_path, capsys):
    from medgan_aug.cli import main

    empty = write_npz(
        tmp_path / "empty.npz",
        train_images=np.zeros((0, 28, 28), np.uint8),
        train_labels=np.zeros((0, 14), np.uint8),
    )
    argv = ["train", "--path", str(empty), "--out", str(tmp_path / "run"), "--threads", "1", "--no-progress"]
    err = _one_line_error(capsys, main(argv), "train")
    assert f"{empty}: the train split has no images (train_images is empty)" in err and "n=1" not in err
