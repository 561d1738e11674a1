"""MONAI bundle export: layout, metadata, ConfigParser loading, `python -m monai.bundle run`, exact
equality with SyntheticDataset for the same seed, overwrite refusal, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from engine_helpers import tiny_gan_config
from monai.bundle import ConfigParser

from medgan_aug.apps.train import train_gan
from medgan_aug.bundle.export import export_bundle
from medgan_aug.bundle.files import BUNDLE_FILES
from medgan_aug.bundle.inference_output import write_synthetic
from medgan_aug.bundle.load import load_bundle_dataset
from medgan_aug.cli import main as cli_main
from medgan_aug.data.synthetic import CHUNK_SIZE, SyntheticDataset
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.networks.model_file import save_generator
from medgan_aug.utils.atomic import current_umask
from medgan_aug.utils.errors import InsufficientDiskSpaceError, OutputNotOursError
from medgan_aug.utils.npz_stream import npz_writer


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny conditional run on the real file (8 iterations, base width 8)."""
    out = tmp_path_factory.mktemp("gan") / "run"
    config = tiny_gan_config(
        out, iterations=8, latent_dim=32, checkpoint_every=8, sample_every=8, standing_stats_batches=2, seed=1
    )
    return train_gan(config)


@pytest.fixture(scope="module")
def bundle(run_dir, tmp_path_factory):
    return export_bundle(run_dir, tmp_path_factory.mktemp("bundles") / "chest_gan", num_samples=40, seed=2)


def _parser(bundle) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(bundle / "configs" / "inference.json")
    parser.read_meta(bundle / "configs" / "metadata.json")
    parser["bundle_root"] = str(bundle)
    return parser


def test_layout_and_metadata(bundle, run_dir):
    for rel in (*BUNDLE_FILES, "models/label_pool.npy"):
        assert (bundle / rel).is_file(), rel
    assert not [p for p in bundle.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left
    modes = {p.relative_to(bundle).as_posix(): oct(p.stat().st_mode & 0o777) for p in bundle.rglob("*")}
    modes["."] = oct(bundle.stat().st_mode & 0o777)  # as mkdir makes it, not tempfile's private 0700
    umask = current_umask()
    wanted = {k: oct((0o777 if (bundle / k).is_dir() else 0o666) & ~umask) for k in modes}
    assert modes == wanted, modes
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    import monai

    assert (
        meta["monai_version"] == monai.__version__
        and meta["pytorch_version"] == torch.__version__.split("+")[0]
    )
    assert meta["numpy_version"] == np.__version__ and "medgan_aug" in meta["required_packages_version"]
    fmt = meta["network_data_format"]
    assert fmt["inputs"]["latent"]["spatial_shape"] == [32]
    labels = fmt["inputs"]["labels"]
    assert labels["spatial_shape"] == [14] and labels["value_range"] == [0, 1]
    assert labels["channel_def"]["0"] == "atelectasis" and labels["channel_def"]["13"] == "hernia"
    pred = fmt["outputs"]["pred"]
    assert (pred["num_channels"], pred["spatial_shape"], pred["value_range"]) == (1, [28, 28], [0, 1])
    data = meta["training_data"]
    assert data["flag"] == "chestmnist" and data["file"] == "nih1000_chestmnist.npz"
    assert data["num_images"] == 69 and data["fraction"] == 0.1
    assert "unrestricted use with attribution" in data["license"] and "CVPR 2017" in data["citation"]
    assert data["medmnist"]["license"] == "CC BY 4.0"
    assert meta["medgan_aug"]["arch"] == {
        "image_size": 28,
        "latent_dim": 32,
        "num_labels": 14,
        "base_channels": 8,
        "out_channels": 1,
    }
    assert meta["medgan_aug"]["run"]["iterations"] == 8
    assert "path" not in meta["medgan_aug"]["training_config"]  # no local paths in the bundle
    readme = (bundle / "docs" / "README.md").read_text()
    assert "python -m monai.bundle run --config_file configs/inference.json" in readme
    assert "CC BY 4.0" in readme and "Wang et al." in readme
    state = torch.load(bundle / "models" / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values()) and "net.0.weight" in state
    pool = np.load(bundle / "models" / "label_pool.npy", allow_pickle=False)
    assert pool.dtype == np.float32 and pool.shape == (69, 14)


def test_config_parser_gives_the_synthetic_dataset_items(bundle, run_dir):
    parser = _parser(bundle)
    network = parser.get_parsed_content("network")
    assert isinstance(network, DCGANGenerator) and not network.training
    dataset = parser.get_parsed_content("dataset")
    assert isinstance(dataset, SyntheticDataset) and len(dataset) == 40 and dataset.seed == 2
    n = CHUNK_SIZE + 20  # crosses a chunk boundary
    from_bundle = load_bundle_dataset(bundle, num_samples=n, seed=5)
    reference = SyntheticDataset.from_run(run_dir, n, seed=5)
    a, b = from_bundle.get_batch(np.arange(n)), reference.get_batch(np.arange(n))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    other = load_bundle_dataset(bundle, num_samples=n, seed=6).get_batch(np.arange(n))
    assert not torch.equal(other["image"], a["image"])  # the seed matters
    balanced = load_bundle_dataset(bundle, num_samples=300, label_sampler="balanced")
    assert balanced.targets[:, 13].mean() > 0.03  # hernia: 1/69 real rows, about 1/14 balanced


@pytest.mark.slow
def test_monai_bundle_run_writes_the_same_images(bundle, run_dir, tmp_path):
    out = tmp_path / "gen.npz"
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        "configs/inference.json",
        "--num_samples",
        "300",
        "--seed",
        "5",
        "--output_path",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=bundle, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"wrote 300 synthetic images (seed 5) to {out}" in proc.stdout  # via configs/logging.conf
    with np.load(out, allow_pickle=False) as f:
        images, labels, names = f["images"], f["labels"], f["label_names"]
        assert int(f["seed"]) == 5
    reference = SyntheticDataset.from_run(run_dir, 300, seed=5).get_batch(np.arange(300))
    assert images.shape == (300, 1, 28, 28) and images.dtype == np.float32
    assert np.array_equal(images, reference["image"].numpy())  # bit-identical
    assert np.array_equal(labels, reference["label"].numpy())
    assert names[0] == "atelectasis" and len(names) == 14
    # a second run refuses to overwrite its output unless told to
    proc = subprocess.run(cmd, cwd=bundle, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "exists" in proc.stderr
    with np.load(out, allow_pickle=False) as f:
        assert np.array_equal(f["images"], images)


def test_folder_output_and_unconditional_bundle(tmp_path):
    torch.manual_seed(0)
    g = DCGANGenerator(image_size=28, latent_dim=8, num_labels=0, base_channels=8).eval()
    save_generator(g, tmp_path / "g.pt", meta={"flag": "pneumoniamnist", "iterations": 1})
    bundle = export_bundle(tmp_path / "g.pt", tmp_path / "uncond")
    assert not (bundle / "models" / "label_pool.npy").exists()
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert "labels" not in meta["network_data_format"]["inputs"]
    assert "Kermany" in meta["training_data"]["citation"]
    dataset = load_bundle_dataset(bundle, num_samples=5, seed=1)
    folder = write_synthetic(dataset, tmp_path / "pngs")
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:06d}.png" for i in range(5)]
    from PIL import Image

    pixels = np.asarray(Image.open(folder / "000003.png"))
    expected = np.round(SyntheticDataset(g, 5, seed=1)[3]["image"][0].numpy() * 255).astype(np.uint8)
    assert pixels.shape == (28, 28) and np.array_equal(pixels, expected)
    with pytest.raises(FileExistsError, match="exists"):
        write_synthetic(dataset, folder)
    npz = write_synthetic(dataset, tmp_path / "synthetic.npz")
    modes = {p.name: p.stat().st_mode & 0o777 for p in (folder, *folder.iterdir(), npz)}
    umask = current_umask()
    assert modes == {p: 0o777 & ~umask if p == "pngs" else 0o666 & ~umask for p in modes}, modes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt", "pngs", "synthetic.npz", "uncond"]


def test_overwrite_refusal_and_cli(bundle, run_dir, tmp_path, capsys):
    before = (bundle / "configs" / "inference.json").read_text()
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_bundle(run_dir, bundle)
    assert cli_main(["export-bundle", "--run", str(run_dir), "--out", str(bundle)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (bundle / "configs" / "inference.json").read_text() == before
    out = tmp_path / "b2"
    assert cli_main(["export-bundle", "--run", str(run_dir), "--out", str(out), "--num-samples", "7"]) == 0
    assert "monai.bundle run" in capsys.readouterr().out
    assert json.loads((out / "configs" / "inference.json").read_text())["num_samples"] == 7
    assert (
        cli_main(["export-bundle", "--run", str(run_dir), "--out", str(out), "--seed", "9", "--overwrite"])
        == 0
    )
    assert json.loads((out / "configs" / "inference.json").read_text())["seed"] == 9
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert cli_main(["export-bundle", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "b3")]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="num_samples"):
        export_bundle(run_dir, tmp_path / "b4", num_samples=0)


# ------------------------------------------------------------------------- what --overwrite may replace


@pytest.fixture
def generator_file(tmp_path):
    torch.manual_seed(0)
    g = DCGANGenerator(image_size=28, latent_dim=8, num_labels=0, base_channels=8).eval()
    return save_generator(g, tmp_path / "g.pt", meta={"flag": "pneumoniamnist", "iterations": 1})


def _seed(bundle) -> int:
    return json.loads((bundle / "configs" / "inference.json").read_text())["seed"]


def test_overwrite_replaces_an_old_bundle_and_an_empty_folder(generator_file, tmp_path):
    (tmp_path / "empty").mkdir()
    assert _seed(export_bundle(generator_file, tmp_path / "empty", seed=3)) == 3
    old = export_bundle(generator_file, tmp_path / "b", seed=1)
    write_synthetic(
        load_bundle_dataset(old, num_samples=3), old / "outputs" / "synthetic.npz"
    )  # its inference
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        export_bundle(generator_file, old, seed=2)
    assert _seed(export_bundle(generator_file, old, seed=2, overwrite=True)) == 2
    assert not (old / "outputs").exists()  # the old bundle's output went with it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "empty", "g.pt"]  # no temporary folder left


@pytest.mark.parametrize(
    "foreign, reason",
    [
        ({"notes.txt": "mine"}, "has no configs/metadata.json"),
        (
            {"configs/metadata.json": '{"schema": "https://monai.io/model-zoo/meta_schema.json"}'},
            "name medgan_aug",
        ),
        ({"configs/metadata.json": "{not json"}, "not readable JSON"),
        ({"docs/my_notes.md": "mine"}, "docs/my_notes.md"),  # added to one of our bundles
    ],
    ids=["unrelated", "another_bundle", "bad_metadata", "bundle_plus_a_user_file"],
)
def test_overwrite_never_replaces_a_folder_that_is_not_ours(
    generator_file, tmp_path, capsys, foreign, reason
):
    out = tmp_path / "out"
    if "docs/my_notes.md" in foreign:
        export_bundle(generator_file, out)
    for name, text in foreign.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(OutputNotOursError, match=reason) as caught:
        export_bundle(generator_file, out, overwrite=True)
    assert str(out) in str(caught.value) and isinstance(caught.value, FileExistsError)
    code = cli_main(["export-bundle", "--run", str(generator_file), "--out", str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1 and str(out) in err and reason in err, err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt", "out"]


def test_a_file_where_the_bundle_goes_is_refused(generator_file, tmp_path):
    out = tmp_path / "out"
    out.write_text("mine")
    with pytest.raises(OutputNotOursError, match="is a file, not a folder"):
        export_bundle(generator_file, out, overwrite=True)
    assert out.read_text() == "mine"


def test_a_folder_that_stops_being_ours_while_exporting_is_kept(generator_file, tmp_path, monkeypatch):
    out = export_bundle(generator_file, tmp_path / "b", seed=1)
    real_save = torch.save

    def save_and_meddle(obj, f, *args, **kwargs):
        (out / "mine.txt").write_text("written while the export ran")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_and_meddle)
    with pytest.raises(OutputNotOursError, match="mine.txt"):
        export_bundle(generator_file, out, seed=2, overwrite=True)
    assert (out / "mine.txt").exists() and _seed(out) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "g.pt"]


def test_write_synthetic_replaces_only_its_own_png_folder(generator_file, tmp_path):
    dataset = load_bundle_dataset(export_bundle(generator_file, tmp_path / "b"), num_samples=3)
    pngs = write_synthetic(dataset, tmp_path / "pngs")
    write_synthetic(load_bundle_dataset(tmp_path / "b", num_samples=2), pngs, overwrite=True)
    assert sorted(p.name for p in pngs.iterdir()) == ["000000.png", "000001.png"]
    (pngs / "keep.jpg").write_bytes(b"mine")
    with pytest.raises(OutputNotOursError, match="keep.jpg"):
        write_synthetic(dataset, pngs, overwrite=True)
    assert (pngs / "keep.jpg").read_bytes() == b"mine"


def test_write_synthetic_replaces_only_its_own_npz(generator_file, tmp_path, chest28_path):
    """overwrite replaces a .npz the bundle's inference wrote (signed), never a user's own .npz."""
    dataset = load_bundle_dataset(export_bundle(generator_file, tmp_path / "b"), num_samples=3)
    out = write_synthetic(dataset, tmp_path / "synthetic.npz")
    assert npz_writer(out) == "medgan_aug bundle inference"
    write_synthetic(load_bundle_dataset(tmp_path / "b", num_samples=2), out, overwrite=True)
    with np.load(out, allow_pickle=False) as f:
        assert len(f["images"]) == 2
    real = tmp_path / "chestmnist.npz"
    shutil.copyfile(chest28_path, real)
    with pytest.raises(OutputNotOursError, match="not written by a medgan_aug bundle's inference") as caught:
        write_synthetic(dataset, real, overwrite=True)
    assert str(real) in str(caught.value) and real.read_bytes() == chest28_path.read_bytes()


def test_write_synthetic_streams_labels_and_refuses_what_the_disk_cannot_hold(tmp_path, monkeypatch):
    torch.manual_seed(0)
    g = DCGANGenerator(image_size=28, latent_dim=8, num_labels=3, base_channels=8).eval()
    pool = np.eye(3, dtype=np.float32)[np.arange(30) % 3]
    dataset = SyntheticDataset(g, 300, label_pool=pool, seed=4, label_names=["a", "b", "c"], batch_size=100)
    npz = write_synthetic(dataset, tmp_path / "s.npz")  # 300 items: two blocks of 256, the last short
    with np.load(npz, allow_pickle=False) as f:
        assert np.array_equal(f["images"], dataset.get_batch(range(300))["image"].numpy())
        assert np.array_equal(f["labels"], dataset.targets) and f["labels"].dtype == np.float32
        assert f["label_names"].tolist() == ["a", "b", "c"] and f["seed"] == 4
    pngs = write_synthetic(dataset, tmp_path / "pngs")
    rows = (pngs / "labels.csv").read_text().splitlines()
    assert rows[0] == "file,a,b,c" and len(rows) == 301 and len(list(pngs.glob("*.png"))) == 300
    assert rows[300] == "000299.png," + ",".join(f"{v:g}" for v in dataset.targets[299])
    size = npz.stat().st_size
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12, size))
    with pytest.raises(
        InsufficientDiskSpaceError, match=rf"{tmp_path / 'big.npz'} would need .* \({size} bytes\) free"
    ):
        write_synthetic(dataset, tmp_path / "big.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pngs", "s.npz"]
