"""medgan_aug.apps.generate (``medgan-aug generate``): the streamed MedMNIST file holds SyntheticDataset's
items, memory does not grow with the number of images, and an output the disk cannot hold is refused."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from medgan_aug.apps.generate import GENERATE_WRITER, generate_medmnist, medmnist_npz_size, write_medmnist_npz
from medgan_aug.bundle.inference_output import write_synthetic
from medgan_aug.cli import main as cli_main
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.networks.model_file import save_generator
from medgan_aug.utils.atomic import current_umask
from medgan_aug.utils.errors import InsufficientDiskSpaceError, OutputNotOursError
from medgan_aug.utils.npz_stream import npz_writer
from medgan_aug.utils.temp_files import temp_name


@pytest.fixture(scope="module")
def run(tmp_path_factory, chest28_path):
    """A run folder with an untrained conditional generator and the real labels to resample."""
    real = MedMNISTDataset(path=chest28_path, split="train")
    torch.manual_seed(0)
    generator = DCGANGenerator(image_size=28, latent_dim=16, num_labels=14, base_channels=8).eval()
    folder = tmp_path_factory.mktemp("run")
    meta = {"train_labels": real.labels.tolist(), "flag": "chestmnist", "task": real.task}
    save_generator(generator, folder / "generator.pt", meta={**meta, "label_names": real.label_names})
    return folder


def _quantized(dataset: SyntheticDataset) -> np.ndarray:
    images = dataset.get_batch(range(len(dataset)))["image"]
    return torch.round(images.clamp(0, 1) * 255).to(torch.uint8)[:, 0].numpy()


@pytest.mark.parametrize("balanced", [False, True])
def test_the_streamed_file_holds_the_synthetic_dataset_items(run, tmp_path, balanced):
    out = tmp_path / "synth.npz"
    written = generate_medmnist(run, 700, out, seed=5, balanced=balanced, batch_size=300, progress=False)
    dataset = SyntheticDataset.from_run(run, 700, seed=5, label_sampler="balanced" if balanced else None)
    read = MedMNISTDataset(path=out, split="train")
    assert np.array_equal(read.images, _quantized(dataset))  # 700 = 2 chunks + a short one
    assert np.array_equal(read.targets, dataset.targets) and read.labels.dtype == np.uint8
    assert torch.equal(read[123]["image"], torch.round(dataset[123]["image"] * 255) / 255)
    assert written.label_counts == dataset.targets.sum(0).astype(int).tolist()
    assert (written.num_images, written.image_shape, written.seed) == (700, (28, 28), 5)
    assert written.source == run / "generator.pt"
    for split in ("val", "test"):
        assert len(MedMNISTDataset(path=out, split=split)) == 0
    assert out.stat().st_size <= medmnist_npz_size(700, (28, 28), 14) < out.stat().st_size + 2000
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth.npz"]
    again = generate_medmnist(run, 700, tmp_path / "again.npz", seed=5, balanced=balanced, batch_size=1000)
    assert again.path.read_bytes() == out.read_bytes()  # the batch size changes no byte


def test_class_index_labels_for_multi_class_tasks(tmp_path):
    torch.manual_seed(0)
    generator = DCGANGenerator(image_size=28, latent_dim=8, num_labels=3, base_channels=8).eval()
    classes = np.arange(300) % 3
    dataset = SyntheticDataset(generator, 300, labels=np.eye(3, dtype=np.float32)[classes], seed=1)
    dataset.meta = {"task": "multi-class"}
    written = write_medmnist_npz(dataset, tmp_path / "mc.npz", progress=False)
    with np.load(tmp_path / "mc.npz") as npz:
        assert npz["train_labels"].shape == (300, 1) and np.array_equal(npz["train_labels"][:, 0], classes)
        assert npz["val_labels"].shape == (0, 1)
    assert written.label_counts == [100, 100, 100]


_PEAK_RSS = """
import resource, sys
from medgan_aug.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
sys.exit(code)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB, and MALLOC_ is glibc's, on Linux")
@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_number_of_images(run, tmp_path):
    # A fixed mmap threshold makes glibc return every large block at once: without it the heap's growth
    # (fragmentation of the generator's temporary tensors) adds up to ~15 MB of noise to the peak.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}
    procs = {}
    for num in (2_000, 20_000):
        argv = ["generate", "--run", str(run), "--num", str(num), "--out", str(tmp_path / f"s{num}.npz")]
        procs[num] = subprocess.Popen(
            [sys.executable, "-c", _PEAK_RSS, *argv, "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
    peak = {}
    for num, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
        peak[num] = int(out.decode().splitlines()[-1]) * 1024
        assert len(MedMNISTDataset(path=tmp_path / f"s{num}.npz", split="train")) == num
    # 18,000 more images are 13.5 MiB as uint8; keeping them all in memory (as before streaming) added
    # 72 MiB to the peak under the same malloc setting, streaming adds < 1 MiB
    grew = peak[20_000] - peak[2_000]
    assert grew < 4 * 2**20, f"peak RSS grew by {grew / 2**20:.1f} MiB from 2,000 to 20,000 images"


def _disk_with_free(free: int):
    return lambda path: shutil._ntuple_diskusage(10**12, 10**12 - free, free)


def test_an_output_larger_than_the_free_disk_space_is_refused(run, tmp_path, monkeypatch, capsys):
    need = medmnist_npz_size(1000, (28, 28), 14) + 1000 * 14  # the file and its temporary label file
    monkeypatch.setattr(shutil, "disk_usage", _disk_with_free(need - 1))
    out = tmp_path / "big.npz"
    with pytest.raises(InsufficientDiskSpaceError) as caught:
        generate_medmnist(run, 1000, out, progress=False)
    message = str(caught.value)
    assert str(out) in message and f"({need} bytes)" in message and f"({need - 1} bytes) free" in message
    assert isinstance(caught.value, OSError) and list(tmp_path.iterdir()) == []
    code = cli_main(["generate", "--run", str(run), "--num", "1000", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1 and f"({need} bytes)" in err and "795.1 KiB" in err
    monkeypatch.setattr(shutil, "disk_usage", _disk_with_free(need))
    generate_medmnist(run, 1000, out, progress=False)  # exactly enough
    assert len(MedMNISTDataset(path=out, split="train")) == 1000


def test_a_full_disk_while_streaming_is_one_line_and_keeps_the_old_file(run, tmp_path, monkeypatch, capsys):
    out = generate_medmnist(run, 300, tmp_path / "synth.npz", progress=False).path
    before = out.read_bytes()

    def full(self, rows):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write(2): no file name

    monkeypatch.setattr("medgan_aug.utils.npz_stream.ArrayStream.write", full)
    argv = ["generate", "--run", str(run), "--num", "600", "--out", str(out), "--overwrite", "--quiet"]
    assert cli_main(argv) == 1
    err = capsys.readouterr().err
    assert err == f"medgan-aug generate: error: {out}: {os.strerror(errno.ENOSPC)}\n"
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["synth.npz"]


# ----------------------------------------------------------------------------------- what --overwrite replaces


def test_overwrite_replaces_only_a_file_generate_wrote(run, tmp_path, chest28_path, capsys):
    """A generated file carries generate's marker; a user's real data set (a copy of the MedMNIST file) is
    refused with one line naming it, --overwrite or not, and is left byte for byte."""
    out = generate_medmnist(run, 20, tmp_path / "synth.npz", seed=1, progress=False).path
    assert npz_writer(out) == GENERATE_WRITER
    with pytest.raises(FileExistsError, match="--overwrite"):
        generate_medmnist(run, 20, out, seed=2, progress=False)
    generate_medmnist(run, 30, out, seed=2, overwrite=True, progress=False)  # ours: replaced
    assert len(MedMNISTDataset(path=out, split="train")) == 30

    real = tmp_path / "my_chestmnist.npz"
    shutil.copyfile(chest28_path, real)
    before = real.read_bytes()
    for overwrite in (False, True):
        with pytest.raises(OutputNotOursError, match="not written by medgan-aug generate") as caught:
            generate_medmnist(run, 20, real, overwrite=overwrite, progress=False)
        assert str(real) in str(caught.value)
        argv = ["generate", "--run", str(run), "--num", "20", "--out", str(real), "--quiet"]
        assert cli_main(argv + ["--overwrite"] * overwrite) == 1
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and str(real) in err and "not written by medgan-aug generate" in err
    assert real.read_bytes() == before

    bundle_output = tmp_path / "from_a_bundle.npz"  # signed by another writer: not generate's either
    write_synthetic(SyntheticDataset.from_run(run, 5), bundle_output)
    with pytest.raises(OutputNotOursError, match="written by medgan_aug bundle inference"):
        generate_medmnist(run, 20, bundle_output, overwrite=True, progress=False)
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(OutputNotOursError, match="is a folder"):
        generate_medmnist(run, 20, tmp_path / "folder.npz", overwrite=True, progress=False)
    (tmp_path / "link.npz").symlink_to(out)  # even to one of ours: the link is the user's
    with pytest.raises(OutputNotOursError, match="symbolic link"):
        generate_medmnist(run, 20, tmp_path / "link.npz", overwrite=True, progress=False)
    assert len(MedMNISTDataset(path=out, split="train")) == 30


# ------------------------------------------------------------------------------------ temporary files, names


def test_a_250_character_output_name_is_written(run, tmp_path):
    out = tmp_path / ("s" * 246 + ".npz")
    generate_medmnist(run, 10, out, progress=False)
    assert len(MedMNISTDataset(path=out, split="train")) == 10 and os.listdir(tmp_path) == [out.name]


@pytest.mark.slow
def test_the_temporary_file_of_a_killed_generate_is_removed_by_the_next(run, tmp_path):
    """SIGKILL in the middle of a write leaves the hidden temporary .npz; the next generate to the same
    output removes it, and keeps a user's dotfiles and the temporary files of other outputs."""
    out = tmp_path / ("k" * 200 + ".npz")
    argv = ["generate", "--run", str(run), "--num", "300000", "--batch-size", "256", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "medgan_aug", *argv, "--quiet"], env=env)
    try:
        for _ in range(1200):  # the temporary file appears once the generator is loaded
            temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp.npz")]
            if temps and temps[0].stat().st_size > 1_000_000:
                break
            assert proc.poll() is None, "generate ended before it was killed"
            time.sleep(0.05)
        else:
            pytest.fail("no temporary file appeared")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    orphan = temps[0]
    assert orphan.name.startswith(".") and not out.exists()
    kept = [".bashrc", f".{out.name}.bak", temp_name("other.npz", ".npz")]
    for name in kept:
        (tmp_path / name).write_text("mine")
    generate_medmnist(run, 10, out, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, *kept])
    assert len(MedMNISTDataset(path=out, split="train")) == 10
