"""Data-parallel classifier training under ``torchrun`` (gloo, CPU, loopback): 2 processes train the
classifier 1 process trains with the same global batch; ``medgan-aug classify`` writes one set of outputs;
the ranks slice the one-process batches but draw their own augmentation; one failing rank ends the run."""

from __future__ import annotations

import ast
import json
import re
import textwrap
import time

import pytest
import torch
from engine_helpers import tiny_gan_config
from test_distributed import _torchrun
from torch.utils.data import Dataset

from medgan_aug.apps.classify import ClassifierRunConfig, train_classifier_run
from medgan_aug.apps.train import train_gan
from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.data.stratify import low_data_indices
from medgan_aug.engines.classifier_trainer import _training_loader, train_classifier
from medgan_aug.engines.distributed import Shard, rank_seed
from medgan_aug.networks.classifiers import build_classifier
from medgan_aug.networks.model_file import load_classifier
from medgan_aug.transforms.classical import classical_augmentation

# A small CNN without dropout on 25% of the real file (173 images), global batch 16, 10 Adam steps (the
# 11th pass boundary is crossed at step 11 only with more steps; 173 // 16 = 10 batches a pass).
_WORKER = textwrap.dedent(
    """
    import json, sys, torch
    from medgan_aug.networks.classifiers import build_classifier
    from medgan_aug.engines.classifier_trainer import train_classifier
    from medgan_aug.data.medmnist import MedMNISTDataset
    from medgan_aug.data.stratify import low_data_indices
    from medgan_aug.engines.distributed import distributed_context

    path, out, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    with distributed_context() as shard:
        labels = MedMNISTDataset(path=path, split="train").labels
        train = MedMNISTDataset(path=path, split="train", indices=low_data_indices(labels, fraction=0.25, seed=0))
        model = build_classifier("small_cnn", 1, 14, 28, seed=1)
        model.head[0].p = 0.0  # no dropout: the only per-rank randomness
        history = train_classifier(model, train, task=train.task, iterations=iterations, batch_size=16, seed=2)
        if shard.is_main:
            torch.save(model.state_dict(), out)
            print("HISTORY " + repr({k: history[k] for k in ("losses", "examples_seen", "world_size")}))
    """
)

# Measured over 10 steps: per-step losses differ by at most 9e-6 and weights by 4.8e-4 (Adam's first steps
# divide tiny gradients by their own size, which magnifies float summation-order differences). Per-rank
# BatchNorm instead of synchronised BatchNorm: 6e-3 and 1.4e-2; no gradient averaging: 4e-2 and 1.6e-2.
LOSS_ATOL, WEIGHT_ATOL = 1e-4, 2e-3


@pytest.mark.slow
def test_two_processes_train_the_classifier_one_process_trains(tmp_path, chest28_path):
    labels = MedMNISTDataset(path=chest28_path, split="train").labels
    train = MedMNISTDataset(
        path=chest28_path, split="train", indices=low_data_indices(labels, fraction=0.25, seed=0)
    )
    one = build_classifier("small_cnn", 1, 14, 28, seed=1)
    one.head[0].p = 0.0
    history = train_classifier(one, train, task=train.task, iterations=10, batch_size=16, seed=2)
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    proc = _torchrun([str(script), str(chest28_path), str(tmp_path / "two.pt"), "10"], cwd=tmp_path)
    two = ast.literal_eval(next(ln for ln in proc.stdout.splitlines() if ln.startswith("HISTORY "))[8:])
    assert two["world_size"] == 2 and history["world_size"] == 1
    assert two["examples_seen"] == history["examples_seen"] == 160
    assert max(abs(a - b) for a, b in zip(two["losses"], history["losses"])) < LOSS_ATOL
    assert history["losses"][-1] < history["losses"][0] - 0.2  # it trains
    state = torch.load(tmp_path / "two.pt", weights_only=True)
    reference = one.state_dict()
    assert state.keys() == reference.keys()  # synchronised BatchNorm keeps BatchNorm's state_dict keys
    for key, value in reference.items():
        if value.is_floating_point():
            assert (state[key] - value).abs().max() < WEIGHT_ATOL, key
        else:
            assert torch.equal(state[key], value), key  # num_batches_tracked


class _SameImage(Dataset):
    """The same image n times, through a random transform: any two items differ only by augmentation."""

    def __init__(self, image: torch.Tensor, n: int, transform) -> None:
        self.image, self.n, self.transform = image, n, transform

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return self.transform({"image": self.image.clone(), "label": torch.tensor([float(i)])})


def _labels_of_steps(loader, steps: int) -> list[torch.Tensor]:
    """The label batches of the first ``steps`` training steps, passing over ``loader`` as often as needed."""
    out: list[torch.Tensor] = []
    while len(out) < steps:
        out += [batch["label"] for batch in loader][: steps - len(out)]
    return out


def test_ranks_slice_the_one_process_batches_but_augment_on_their_own(chest28_path):
    labels = MedMNISTDataset(path=chest28_path, split="train").labels
    train = MedMNISTDataset(
        path=chest28_path, split="train", indices=low_data_indices(labels, fraction=0.1, seed=0)
    )
    shards = [Shard(r, 2, r, torch.device("cpu")) for r in (0, 1)]  # no process group needed to load
    one = _labels_of_steps(_training_loader(train, 16, True, 4, 0, None), 9)
    parts = [_labels_of_steps(_training_loader(train, 16, True, 4, 0, shard), 9) for shard in shards]
    for step in range(9):  # 69 images: 4 batches a pass, so this crosses two reshuffles
        assert torch.equal(torch.cat([parts[0][step], parts[1][step]]), one[step]), step

    image = train[0]["image"]
    augmented = []
    for shard in shards:
        dataset = _SameImage(image, 16, classical_augmentation(28, prob=1.0))
        batch = next(iter(_training_loader(dataset, 16, True, 4, 0, shard)))
        augmented.append(batch["image"])
    assert augmented[0].shape == augmented[1].shape == (8, 1, 28, 28)
    # with one seed for both ranks, item k of each rank's slice would get the same affine, noise and gamma
    for k in range(8):
        assert not torch.allclose(augmented[0][k], augmented[1][k]), k
    again = next(iter(_training_loader(_SameImage(image, 16, classical_augmentation(28, prob=1.0)), 16, True, 4, 0,
                                       shards[1])))  # fmt: skip
    assert torch.equal(again["image"], augmented[1])  # and a rank's draws are reproducible
    assert len({rank_seed(4, r) for r in range(8)} | {rank_seed(5, 0)}) == 9


def test_data_parallel_errors(chest28_path):
    train = MedMNISTDataset(path=chest28_path, split="train", indices=list(range(10)))
    model = build_classifier("small_cnn", 1, 14, 28, seed=0)
    with pytest.raises(
        ValueError, match="distributed=True needs an initialised torch.distributed process group"
    ):
        train_classifier(model, train, task=train.task, iterations=1, batch_size=4, distributed=True)
    with pytest.raises(ValueError, match="distributed must be None, True or False"):
        train_classifier(model, train, task=train.task, iterations=1, batch_size=4, distributed="yes")


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """A tiny conditional GAN run (6 iterations) to draw synthetic images from."""
    out = tmp_path_factory.mktemp("gan") / "run"
    config = tiny_gan_config(
        out, iterations=6, fraction=0.25, latent_dim=16, checkpoint_every=6, sample_every=6, seed=0
    )
    return train_gan(config)


@pytest.mark.slow
def test_classify_command_under_torchrun_writes_one_run(tmp_path, chest28_path, gan_run):
    out = tmp_path / "cls"
    args = [
        "-m", "medgan_aug", "classify", "--path", str(chest28_path), "--fraction", "0.25", "--condition",
        "real+synthetic@0.5+classical", "--gan-run", str(gan_run), "--num-synthetic", "64", "--iterations", "6",
        "--batch-size", "16", "--seed", "3", "--out", str(out), "--threads", "1", "--no-progress",
    ]  # fmt: skip
    proc = _torchrun(args, cwd=tmp_path)
    assert proc.stdout.count(f"run directory: {out}") == 2  # both ranks finished, after rank 0 wrote
    assert sorted(p.name for p in out.iterdir()) == [
        "classifier.pt",
        "config.json",
        "losses.csv",
        "metrics.json",
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["iterations"] == 6
    assert metrics["examples_seen"] == 6 * 16  # replace mode keeps the global batch
    assert 0.0 <= metrics["auc"] <= 1.0 and metrics["n_test"] == 233
    assert metrics["skipped_labels"] == ["hernia"]  # no hernia in the test split
    record = json.loads((out / "config.json").read_text())
    assert record["world_size"] == 2 and record["n_train"] == 173 == len(record["subset_indices"])
    rows = (out / "losses.csv").read_text().splitlines()
    assert rows[0] == "step,loss" and [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, 7))
    model, meta = load_classifier(out / "classifier.pt")
    assert meta["condition"] == "real+synthetic@0.5+classical" and len(meta["label_names"]) == 14

    again = _torchrun(args, cwd=tmp_path, check=False)  # a second run must not overwrite the first
    assert again.returncode != 0 and "already holds a classifier run" in again.stderr
    assert json.loads((out / "metrics.json").read_text()) == metrics


@pytest.mark.slow
def test_one_rank_failing_ends_every_rank(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(textwrap.dedent(
        """
        from medgan_aug.engines.distributed import distributed_context
        with distributed_context(timeout_minutes=30) as shard:
            shard.barrier()
            if shard.rank == 1:
                raise ValueError("rank 1 cannot go on")
            shard.barrier()  # rank 0 waits here for a rank that is gone
        """
    ))  # fmt: skip
    started = time.perf_counter()
    proc = _torchrun([str(script)], cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "rank 1 cannot go on" in proc.stderr
    assert time.perf_counter() - started < 120  # torchrun stops rank 0 at once, not after the 30-min timeout


def test_classifier_run_in_one_process_and_its_errors(tmp_path, chest28_path, gan_run):
    out = tmp_path / "one"
    config = ClassifierRunConfig(
        out=str(out),
        path=str(chest28_path),
        fraction=0.1,
        iterations=4,
        batch_size=8,
        threads=1,
        progress=False,
    )
    assert train_classifier_run(config) == out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 1 and metrics["examples_seen"] == 32
    record = json.loads((out / "config.json").read_text())
    labels = MedMNISTDataset(path=chest28_path, split="train").labels
    assert record["subset_indices"] == [int(i) for i in low_data_indices(labels, fraction=0.1, seed=0)]
    before = (out / "classifier.pt").read_bytes()
    with pytest.raises(FileExistsError, match=re.escape(f"{out} already holds a classifier run")):
        train_classifier_run(config)
    assert (out / "classifier.pt").read_bytes() == before
    bad = {
        "condition": ("real+synthetic@0.5", "mixes in generated images: give gan_run"),
        "gan_run": (str(gan_run), "only used by synthetic conditions"),
        "classifier": ("vgg", "classifier must be one of"),
        "num_synthetic": (0, "num_synthetic must be an integer >= 1"),
    }
    for field, (value, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            train_classifier_run(
                ClassifierRunConfig(**{**vars(config), "out": str(tmp_path / field), field: value})
            )
        assert not (tmp_path / field).exists()
    with pytest.raises(ValueError, match=re.escape("unknown condition 'real+flip'")):
        train_classifier_run(
            ClassifierRunConfig(out=str(tmp_path / "c"), path=str(chest28_path), condition="real+flip")
        )


_STUDY_YAML = """\
name: torchrun-study
data: {{path: {path}, flag: chestmnist}}
fractions: [0.1, 0.25]
seeds: [0]
conditions: [real, real+synthetic@0.5]
classifiers: [small_cnn]
gan: {{iterations: 6, batch_size: 16, conditional: true, base_channels: 8, sample_every: 6, checkpoint_every: 6}}
classifier: {{iterations: 5, batch_size: 16, lr: 0.001}}
synthetic: {{num_samples: 64}}
bootstrap: {{n_boot: 20}}
evaluation: {{enabled: false}}
"""


@pytest.mark.slow
def test_study_under_torchrun_splits_groups_and_equals_one_process(tmp_path, chest28_path):
    from medgan_aug.apps.study.config import expand_grid, load_study_config, select_shard
    from medgan_aug.apps.study.study import run_study, torchrun_shard

    config_file = tmp_path / "study.yaml"
    config_file.write_text(_STUDY_YAML.format(path=chest28_path))
    args = ["-m", "medgan_aug", "study", "--config", str(config_file), "--out", str(tmp_path / "two"), "--threads",
            "1", "--no-progress"]  # fmt: skip
    proc = _torchrun(args, cwd=tmp_path)
    # each process took one of the two (fraction, seed) groups
    assert "2 runs to do, 0 already finished (shard 0/2)" in proc.stderr
    assert "2 runs to do, 0 already finished (shard 1/2)" in proc.stderr
    one = run_study(load_study_config(config_file), tmp_path / "one", progress=False)
    rows = {p.name: json.loads(p.read_text()) for p in (tmp_path / "two" / "runs").iterdir()}
    reference = {p.name: json.loads(p.read_text()) for p in (one / "runs").iterdir()}
    assert rows.keys() == reference.keys() and len(rows) == 4
    for key, row in rows.items():  # whole groups in one process each: the one-process numbers, exactly
        assert row["auc"] == reference[key]["auc"] and row["per_label_auc"] == reference[key]["per_label_auc"]
    summary = (tmp_path / "two" / "summary.md").read_text()
    assert (
        summary.count("real+synthetic@0.5")
        == (one / "summary.md").read_text().count("real+synthetic@0.5")
        > 0
    )

    grid = expand_grid(load_study_config(config_file))
    for index, count in ((0, 1), (1, 3)):  # torchrun's processes split exactly the shard they were given
        parts = [select_shard(grid, torchrun_shard((index, count), rank, 2)) for rank in (0, 1)]
        assert sorted(map(repr, parts[0] + parts[1])) == sorted(map(repr, select_shard(grid, (index, count))))
        assert not {repr(r) for r in parts[0]} & {repr(r) for r in parts[1]}
