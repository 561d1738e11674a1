"""medgan_aug.apps.generate (``medgan-aug generate``): the streamed MedMNIST file holds SyntheticDataset's
items, memory does not grow with the number of images, and an output the disk cannot hold is refused."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from medgan_aug.apps.generate import generate_medmnist, medmnist_npz_size, write_medmnist_npz
from medgan_aug.cli import main as cli_main
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.networks.dcgan import DCGANGenerator
from medgan_aug.networks.model_file import save_generator
from medgan_aug.utils.errors import InsufficientDiskSpaceError


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
    assert oct(out.stat().st_mode & 0o777) == "0o644" and sorted(p.name for p in tmp_path.iterdir()) == [
        "synth.npz"
    ]
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
    assert code == 1 and len(err.splitlines()) == 1 and f"({need} bytes)" in err and "794.7 KiB" in err
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
