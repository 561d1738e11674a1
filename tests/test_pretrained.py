"""Pretrained generators shipped in the package (:mod:`medgan_aug.data.pretrained`): the registry, the MD5 check,
``SyntheticDataset.pretrained`` and ``--pretrained`` on ``generate``, ``classify`` and ``report``."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan_aug.cli import main
from medgan_aug.cli.pretrained import PRETRAINED_NAMES
from medgan_aug.data import SyntheticDataset
from medgan_aug.data import pretrained as registry
from medgan_aug.data.pretrained import (
    PRETRAINED,
    pack_pretrained,
    pretrained_card,
    pretrained_path,
    pretrained_run_folder,
)
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.networks.model_file import load_generator, save_generator
from medgan_aug.utils.errors import ModelFileError
from medgan_aug.utils.files import file_md5

REPO = Path(__file__).resolve().parents[1]


def _assert_one_line_error(capsys, code: int, command: str, *mentions: str) -> str:
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith(f"medgan-aug {command}: error: ") and "Traceback" not in err, err
    for mention in mentions:
        assert mention in err, (mention, err)
    return err


@pytest.fixture
def tiny_run(tmp_path: Path) -> Path:
    """A finished run folder of a tiny conditional generator (random weights: no training needed here)."""
    torch.manual_seed(0)
    generator = DCGANGenerator(image_size=28, latent_dim=8, num_labels=3, base_channels=4)
    with torch.no_grad():  # running stats as a trained generator has them, not the 0/1 of a fresh one
        for name, buf in generator.named_buffers():
            if name.endswith("running_mean") or name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    run = tmp_path / "run"
    labels = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=torch.uint8)
    save_generator(generator, run / "generator.pt", {"train_labels": labels, "label_names": ["a", "b", "c"]})
    record = {
        "config": {"flag": "chestmnist", "size": 28, "fraction": 1.0, "subset_seed": 0, "iterations": 5}
    }
    (run / "config.json").write_text(json.dumps(record))
    return run


@pytest.fixture
def tiny_registry(tiny_run: Path, tmp_path: Path, monkeypatch) -> str:
    """The registry with one entry, ``tiny``: the packed ``tiny_run``, in a folder of its own."""
    files = tmp_path / "pretrained_files"
    pack_pretrained(tiny_run, files / "tiny.pt")
    (files / "tiny.md").write_text("# tiny\n")
    monkeypatch.setattr(registry, "pretrained_dir", lambda: files)
    monkeypatch.setitem(
        PRETRAINED, "tiny", {"file": "tiny.pt", "card": "tiny.md", "md5": file_md5(files / "tiny.pt")}
    )
    return "tiny"


# -- the registry and the package files ---------------------------------------------------------------------
def test_registry_names_cards_and_md5s():
    """Every shipped generator passes its MD5 check, has a card, and the CLI lists exactly these names."""
    assert tuple(sorted(PRETRAINED)) == PRETRAINED_NAMES
    for name in PRETRAINED:
        path = pretrained_path(name)
        assert path.stat().st_size < 2_500_000, (name, path.stat().st_size)  # float16: ~1.8 MB
        card = pretrained_card(name).read_text()
        assert PRETRAINED[name]["md5"] in card and "must not" in card, name
        _, meta = load_generator(path)
        assert meta["weights_dtype"] == "float16"
        assert meta["run_record"]["config"]["fraction"] == 1.0 and meta["fraction"] == 1.0
        assert meta["run_record"]["config"]["conditional"] is True


def test_pretrained_nih1000_gives_deterministic_chest_xrays_without_training():
    dataset = SyntheticDataset.pretrained("nih1000", num_samples=16, seed=3)
    batch = dataset.get_batch(np.arange(16))
    images, labels = batch["image"], batch["label"]
    assert images.shape == (16, 1, 28, 28) and images.dtype == torch.float32
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    assert float(images.std(dim=(1, 2, 3)).min()) > 0.05  # images, not a constant
    assert float((images[0] - images[1]).abs().mean()) > 0.01  # different noise, different images
    assert labels.shape == (16, 14) and set(labels.unique().tolist()) <= {0.0, 1.0}
    assert dataset.label_names is not None and len(dataset.label_names) == 14
    assert dataset[5]["synthetic"] is True
    again = SyntheticDataset.pretrained("nih1000", num_samples=16, seed=3).get_batch(np.arange(16))
    assert torch.equal(again["image"], images) and torch.equal(again["label"], labels)
    other = SyntheticDataset.pretrained("nih1000", num_samples=16, seed=4).get_batch(np.arange(16))
    assert not torch.equal(other["image"], images)
    # the weights are the file's float16 values, upcast to the float32 network
    assert all(p.dtype == torch.float32 for p in dataset.generator.parameters())
    assert all(torch.equal(p, p.half().float()) for p in dataset.generator.parameters())


def test_pretrained_pneumoniamnist_has_one_binary_label():
    batch = SyntheticDataset.pretrained("pneumoniamnist", num_samples=64).get_batch(np.arange(64))
    assert batch["image"].shape == (64, 1, 28, 28)
    assert batch["label"].shape == (64, 1) and 0 < float(batch["label"].mean()) < 1  # both classes drawn


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(
        ValueError,
        match=r"^unknown pretrained generator 'chest'; the package ships: nih1000, pneumoniamnist$",
    ):
        SyntheticDataset.pretrained("chest")


# -- the MD5 check -------------------------------------------------------------------------------------------
def test_tampered_or_missing_file_fails_naming_the_file(tiny_registry, tmp_path):
    path = pretrained_path(tiny_registry)  # intact: passes
    assert len(SyntheticDataset.pretrained(tiny_registry, num_samples=4)) == 4
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(
        ModelFileError, match=r"pretrained generator 'tiny': .*tiny\.pt has MD5 [0-9a-f]{32}, expected"
    ):
        SyntheticDataset.pretrained(tiny_registry)
    path.unlink()
    with pytest.raises(ModelFileError, match=r"tiny\.pt is missing from this installation"):
        pretrained_path(tiny_registry)


# -- packing: float16 weights ----------------------------------------------------------------------------------
def test_pack_stores_float16_weights_that_load_into_float32(tiny_run, tmp_path):
    half, full = tmp_path / "half.pt", tmp_path / "full.pt"
    pack_pretrained(tiny_run, half)
    pack_pretrained(tiny_run, full, half=False)
    stored = torch.load(half, weights_only=True)["state_dict"]
    assert {v.dtype for k, v in stored.items() if "num_batches" not in k} == {torch.float16}
    assert all(v.dtype == torch.int64 for k, v in stored.items() if "num_batches" in k)
    original, _ = load_generator(tiny_run / "generator.pt")
    g16, meta16 = load_generator(half)
    g32, meta32 = load_generator(full)
    assert (meta16["weights_dtype"], meta32["weights_dtype"]) == ("float16", "float32")
    assert meta16["run_record"]["config"]["iterations"] == 5
    for (name, a), b in zip(original.state_dict().items(), g16.state_dict().values()):
        assert b.dtype == a.dtype, name  # upcast on load
        if a.is_floating_point():
            torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0)
    z, y = torch.randn(32, 8, generator=torch.Generator().manual_seed(1)), torch.eye(3)[torch.arange(32) % 3]
    with torch.no_grad():
        assert torch.equal(g32(z, y), original(z, y))
        assert float((g16(z, y) - original(z, y)).abs().max()) < 0.02  # tanh output in [-1, 1]


# -- the command line -------------------------------------------------------------------------------------------
def test_generate_pretrained_writes_images(tmp_path, capsys):
    out = tmp_path / "syn.npz"
    code = main(["generate", "--pretrained", "nih1000", "--num", "12", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    with np.load(out) as npz:
        assert npz["train_images"].shape == (12, 28, 28) and npz["train_images"].dtype == np.uint8
        assert npz["train_labels"].shape == (12, 14)
        assert npz["train_images"].std() > 10
    assert "nih1000.pt" in capsys.readouterr().out


def test_generate_pretrained_unknown_name_is_one_line(tmp_path, capsys):
    code = main(["generate", "--pretrained", "nope", "--num", "2", "--out", str(tmp_path / "x.npz")])
    _assert_one_line_error(capsys, code, "generate", "'nope'", "nih1000, pneumoniamnist")
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("command", ["generate", "report"])
def test_pretrained_with_run_is_refused(command, tmp_path, capsys):
    argv = [command, "--run", str(tmp_path), "--pretrained", "nih1000", "--out", str(tmp_path / "x")]
    with pytest.raises(SystemExit) as exit_info:
        main(argv + (["--num", "2"] if command == "generate" else []))
    assert exit_info.value.code == 2
    assert "argument --pretrained: not allowed with argument --run" in capsys.readouterr().err


def test_classify_pretrained_with_run_is_refused(tmp_path, capsys):
    code = main(
        ["classify", "--sample", "nih1000", "--condition", "real+synthetic@0.5", "--run", str(tmp_path)]
        + ["--pretrained", "nih1000", "--out", str(tmp_path / "cls")]
    )
    _assert_one_line_error(capsys, code, "classify", "--pretrained nih1000", "both name a generator")
    assert not (tmp_path / "cls").exists()


def test_classify_pretrained_mixes_the_packaged_generator_and_warns(tmp_path, capsys):
    out = tmp_path / "cls"
    argv = ["classify", "--sample", "nih1000", "--fraction", "0.1", "--condition", "real+synthetic@0.5"]
    argv += ["--pretrained", "nih1000", "--iterations", "5", "--num-synthetic", "64", "--threads", "1"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "medgan-aug classify: warning: --pretrained nih1000 saw every training image" in err, err
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["gan_run"] == str(pretrained_path("nih1000"))


def test_report_pretrained_needs_out(capsys):
    code = main(["report", "--pretrained", "nih1000"])
    _assert_one_line_error(capsys, code, "report", "--pretrained nih1000 needs --out")


def test_pretrained_run_folder_is_a_run_the_report_reads(tiny_registry, tmp_path):
    out = pretrained_run_folder(tiny_registry, tmp_path / "report")
    assert file_md5(out / "generator.pt") == PRETRAINED["tiny"]["md5"]
    assert json.loads((out / "config.json").read_text())["config"]["iterations"] == 5
    assert pretrained_run_folder(tiny_registry, out) == out  # again into the same folder: fine
    other = tmp_path / "other"
    other.mkdir()
    (other / "generator.pt").write_bytes(b"another generator")
    with pytest.raises(ValueError, match=r"already holds another generator\.pt"):
        pretrained_run_folder(tiny_registry, other)


@pytest.mark.slow
def test_wheel_ships_the_generators_and_cards(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("medgan_aug-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for entry in PRETRAINED.values():
        for key in ("file", "card"):
            assert f"medgan_aug/data/pretrained_files/{entry[key]}" in names
    assert wheel.stat().st_size < 8_000_000, wheel.stat().st_size


def test_export_bundle_pretrained_gives_the_images_of_synthetic_dataset_pretrained(tmp_path, capsys):
    """``export-bundle --pretrained nih1000``: the shipped generator as a MONAI bundle, whose dataset gives
    the images of ``SyntheticDataset.pretrained`` for the same seed; --run with --pretrained is a usage error."""
    from medgan_aug.bundle.load import load_bundle_dataset
    from medgan_aug.data.synthetic import SyntheticDataset

    out = tmp_path / "bundle"
    assert main(["export-bundle", "--pretrained", "nih1000", "--out", str(out), "--num-samples", "8"]) == 0
    capsys.readouterr()
    bundled = load_bundle_dataset(out, num_samples=8, seed=3)
    direct = SyntheticDataset.pretrained("nih1000", 8, seed=3)
    for i in (0, 7):
        assert torch.equal(torch.as_tensor(bundled[i]["image"]), torch.as_tensor(direct[i]["image"]))
    with pytest.raises(SystemExit) as both:
        main(
            ["export-bundle", "--run", str(tmp_path), "--pretrained", "nih1000", "--out", str(tmp_path / "b")]
        )
    assert both.value.code == 2 and not (tmp_path / "b").exists()
