"""Classifier shapes, the training loop (determinism, batch_transform), a short real-data run,
classical augmentation (shape/range, never a flip), and the classifier file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import Dataset
from monai.transforms import Flip, Flipd, RandAxisFlipd, RandFlip, RandFlipd, RandRotate90d

from medgan_aug.data.medmnist import MedMNISTDataset
from medgan_aug.engines.classifier_trainer import extract_features, predict, train_classifier
from medgan_aug.metrics.classification import evaluate_scores
from medgan_aug.networks.classifiers import build_classifier, loss_for_task
from medgan_aug.transforms.classical import classical_augmentation

ML = "multi-label, binary-class"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, two OpenMP threads competing with other processes
    made a small-CNN step ~20x slower (1 s vs 45 ms) in our measurements."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _toy_dataset(n: int = 48, size: int = 28, labels: int = 3, transform=None, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, size, size, generator=g)
    targets = (torch.rand(n, labels, generator=g) < 0.3).float()
    images[:, :, : size // 2] += 0.5 * targets[:, :1, None, None]  # a learnable signal for finding 0
    images = images.clamp(0, 1)
    return Dataset([{"image": images[i], "label": targets[i]} for i in range(n)], transform=transform)


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
@pytest.mark.parametrize("size", [28, 64])
def test_shapes_logits_and_features(name, size):
    model = build_classifier(name, in_channels=1, num_outputs=14, image_size=size, seed=0).eval()
    x = torch.rand(3, 1, size, size)
    with torch.no_grad():
        logits, feats = model(x), model.features(x)
    assert logits.shape == (3, 14)
    assert feats.shape == (3, model.embedding_dim)
    assert model.embedding_dim == (128 if name == "small_cnn" else 512)
    assert torch.isfinite(logits).all()
    # the head is a linear map of the features: forward == head(features) in eval mode
    torch.testing.assert_close(model.head(feats), logits)


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_three_channel_and_seeded_init(name):
    a = build_classifier(name, 3, 2, 28, seed=1)
    b = build_classifier(name, 3, 2, 28, seed=1)
    c = build_classifier(name, 3, 2, 28, seed=2)
    assert a.eval()(torch.rand(2, 3, 28, 28)).shape == (2, 2)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(va, vc) for va, vc in zip(a.state_dict().values(), c.state_dict().values()))


def test_build_classifier_rejects_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        build_classifier("vgg", 1, 14, 28)
    with pytest.raises(ValueError, match="num_outputs"):
        build_classifier("small_cnn", 1, 0, 28)
    with pytest.raises(ValueError, match="image_size"):
        build_classifier("small_cnn", 1, 14, 8)


def test_loss_for_task():
    assert isinstance(loss_for_task(ML), torch.nn.BCEWithLogitsLoss)
    assert isinstance(loss_for_task("binary-class"), torch.nn.BCEWithLogitsLoss)
    ce = loss_for_task("multi-class")
    assert isinstance(ce, torch.nn.CrossEntropyLoss)
    logits, idx = torch.randn(5, 4), torch.tensor([0, 3, 1, 1, 2])
    # one-hot float targets give the same loss as class indices
    torch.testing.assert_close(ce(logits, torch.eye(4)[idx]), torch.nn.functional.cross_entropy(logits, idx))
    assert isinstance(loss_for_task("ordinal-regression"), torch.nn.CrossEntropyLoss)
    with pytest.raises(ValueError, match="task"):
        loss_for_task("regression")


def test_training_is_deterministic_for_a_seed_and_leaves_global_rng_alone():
    aug = classical_augmentation(28, prob=0.5)
    ds = _toy_dataset(transform=aug)

    def run(seed):
        model = build_classifier("small_cnn", 1, 3, 28, seed=seed)
        hist = train_classifier(model, ds, task=ML, iterations=6, batch_size=16, seed=seed)
        return model, hist

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    m1, h1 = run(0)
    assert torch.equal(torch.rand(3), expected_next)  # caller's global generator untouched
    m2, h2 = run(0)
    m3, _ = run(1)
    assert h1["losses"] == h2["losses"] and h1["iterations"] == 6 and h1["examples_seen"] == 96
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v1, v2), k
    assert any(not torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m3.state_dict().values()))


def test_batch_transform_is_applied_and_checked():
    calls = []

    def double_with_synthetic(batch):
        calls.append(batch["image"].shape[0])
        n = batch["image"].shape[0]
        out = {k: torch.cat([v, v]) for k, v in batch.items()}
        out["synthetic"] = torch.tensor([False] * n + [True] * n)
        return out

    model = build_classifier("small_cnn", 1, 3, 28, seed=0)
    hist = train_classifier(
        model, _toy_dataset(n=40), task=ML, iterations=5, batch_size=16, batch_transform=double_with_synthetic
    )
    assert calls == [16] * 5  # 40 items, drop_last: 2 full batches per pass, reshuffled
    assert hist["examples_seen"] == 5 * 32

    def wrong_width(batch):
        return {"image": batch["image"], "label": batch["label"][:, :2]}

    with pytest.raises(ValueError, match="width 2.*num_outputs=3"):
        train_classifier(model, _toy_dataset(), task=ML, iterations=1, batch_transform=wrong_width)
    with pytest.raises(ValueError, match="'image' and 'label'"):
        train_classifier(model, _toy_dataset(), task=ML, iterations=1, batch_transform=lambda b: b["image"])
    with pytest.raises(ValueError, match="iterations"):
        train_classifier(model, _toy_dataset(), task=ML, iterations=0)


@pytest.mark.slow
def test_training_learns_a_planted_signal_and_predict_keeps_order():
    ds = _toy_dataset(n=96, seed=3)
    model = build_classifier("small_cnn", 1, 3, 28, seed=0)
    train_classifier(model, ds, task=ML, iterations=60, batch_size=32, lr=3e-3, seed=0)
    scores, targets = predict(model, ds, batch_size=40)
    assert scores.shape == targets.shape == (96, 3)
    assert np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_array_equal(targets, np.stack([ds[i]["label"].numpy() for i in range(96)]))
    auc = evaluate_scores(targets, scores, ML)["auc_per_label"]["0"]
    assert auc > 0.9  # finding 0 brightens the top half of the image
    feats = extract_features(model, ds)
    assert feats.shape == (96, 128) and np.isfinite(feats).all()


def test_predict_softmax_for_multiclass():
    model = build_classifier("small_cnn", 1, 4, 28, seed=0)
    ds = Dataset([{"image": torch.rand(1, 28, 28), "label": torch.eye(4)[i % 4]} for i in range(10)])
    scores, _ = predict(model, ds, task="multi-class")
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.slow
def test_short_real_run_on_nih1000_beats_chance_and_names_hernia(chest28_path):
    train = MedMNISTDataset(path=chest28_path, split="train")
    test = MedMNISTDataset(path=chest28_path, split="test")
    model = build_classifier("small_cnn", train.num_channels, train.num_labels, 28, seed=0)
    hist = train_classifier(model, train, task=train.task, iterations=120, batch_size=64, seed=0)
    assert hist["losses"][-1] < hist["losses"][0]
    scores, targets = predict(model, test)
    assert scores.shape == (233, 14)
    out = evaluate_scores(targets, scores, test.task, test.label_names)
    assert out["skipped_labels"] == ["hernia"]  # 0 positives in nih1000's test split
    assert out["n_evaluated_labels"] == 13
    assert np.isfinite(out["auc"]) and out["auc"] > 0.55
    assert 0.9 < out["acc"] < 1.0  # mostly negatives: high ACC even for a weak model, as in MedMNIST


@pytest.mark.slow
def test_binary_class_run_on_pneumonia(pneumonia_path):
    train = MedMNISTDataset(
        "pneumoniamnist", path=pneumonia_path, split="train", indices=np.arange(0, 4000, 20)
    )
    test = MedMNISTDataset("pneumoniamnist", path=pneumonia_path, split="test")
    assert train.task == "binary-class" and train.num_labels == 1
    model = build_classifier("small_cnn", 1, 1, 28, seed=0)
    train_classifier(model, train, task=train.task, iterations=40, batch_size=32, seed=0)
    scores, targets = predict(model, test)
    out = evaluate_scores(targets, scores, test.task, test.label_names)
    assert scores.shape == (len(test), 1) and out["skipped_labels"] == []
    assert out["auc"] > 0.75


def test_classical_augmentation_keeps_shape_dtype_range_and_is_seeded():
    img = torch.rand(1, 28, 28)
    aug = classical_augmentation(28, prob=1.0, seed=0)
    outs = [aug({"image": img.clone(), "label": torch.zeros(3)})["image"] for _ in range(10)]
    for out in outs:
        assert type(out) is torch.Tensor and out.dtype == torch.float32 and out.shape == (1, 28, 28)
        assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(outs[0], outs[1])  # random per call
    again = classical_augmentation(28, prob=1.0, seed=0)({"image": img.clone()})["image"]
    torch.testing.assert_close(again, outs[0])
    big = classical_augmentation(64, prob=1.0, seed=0)({"image": torch.rand(1, 64, 64)})["image"]
    assert big.shape == (1, 64, 64)
    with pytest.raises(ValueError, match="prob"):
        classical_augmentation(28, prob=1.5)


def _asymmetric_image(size: int = 28) -> torch.Tensor:
    """A 'heart on the left' test image: bright blob in the left half, dim right half, gradient."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    img = 0.15 + 0.2 * (x < size // 2).float()
    blob = ((x - size * 0.3) ** 2 + (y - size * 0.55) ** 2) < (size * 0.15) ** 2
    img[blob] = 0.9
    return img[None].float()


def test_classical_augmentation_never_flips_left_right():
    img = _asymmetric_image()
    mirrored = torch.flip(img, dims=[-1])
    # 1) no flip-like transform in the pipeline
    aug = classical_augmentation(28, prob=1.0, seed=0)
    flips = (Flip, Flipd, RandFlip, RandFlipd, RandAxisFlipd, RandRotate90d)
    assert not any(isinstance(t, flips) for t in aug.flatten().transforms)
    # 2) with geometry, noise and contrast set to zero at prob 1, the output IS the input (no hidden flip)
    still = classical_augmentation(
        28,
        prob=1.0,
        rotate_degrees=0,
        translate_fraction=0,
        scale_fraction=0,
        noise_std=0,
        gamma_range=(1.0, 1.0),
        seed=0,
    )
    torch.testing.assert_close(still({"image": img.clone()})["image"], img, atol=1e-5, rtol=0)
    # 3) at full strength, every draw stays closer to the original than to its mirror image
    for _ in range(40):
        out = aug({"image": img.clone()})["image"]
        assert (out - img).abs().mean() < (out - mirrored).abs().mean()
        left, right = out[..., :14].mean(), out[..., 14:].mean()
        assert left > right


def test_predict_leaves_the_global_torch_rng_alone(chest28_path):
    """MONAI's DataLoader re-seeds torch's global generator unless given its own; predict must not rewind it."""
    from medgan_aug.data.medmnist import MedMNISTDataset

    ds = MedMNISTDataset(path=chest28_path, split="val")
    model = build_classifier("small_cnn", 1, 14, 28, seed=0)
    torch.manual_seed(1)
    torch.rand(5)
    expected = torch.rand(3)
    torch.manual_seed(1)
    torch.rand(5)
    predict(model, ds)
    extract_features(model, ds)
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------------------ the classify run's checks


def _copy_with(source, target, **arrays):
    with np.load(source) as npz:
        data = {k: npz[k] for k in npz.files}
    data.update(arrays)
    np.savez(target, **data)
    return target


def test_an_empty_test_split_is_refused_before_any_training(chest28_path, tmp_path, monkeypatch, capsys):
    from medgan_aug.apps import classify
    from medgan_aug.cli import main

    empty = _copy_with(
        chest28_path,
        tmp_path / "no_test.npz",
        test_images=np.zeros((0, 28, 28), np.uint8),
        test_labels=np.zeros((0, 14), np.uint8),
    )

    def no_training(*args, **kwargs):
        raise AssertionError("trained before the test split was checked")

    monkeypatch.setattr(classify, "train_classifier", no_training)
    out = tmp_path / "cls"
    argv = ["classify", "--path", str(empty), "--fraction", "0.1", "--iterations", "2", "--out", str(out)]
    assert main([*argv, "--threads", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"{empty}: the test split has no images (test_images is empty)" in err and "scoring" in err
    assert not out.exists()


def test_classify_writes_only_into_a_new_or_empty_folder(chest28_path, tmp_path, capsys):
    """A folder with a user's files is refused by the name of the first one and left as it was; an empty
    folder, or one with only the temporary files of a killed run's writes, is used (and tidied)."""
    from medgan_aug.apps.classify import ClassifierRunConfig, train_classifier_run
    from medgan_aug.cli import main
    from medgan_aug.utils.errors import OutputNotOursError

    def config(out):
        return ClassifierRunConfig(
            out=str(out),
            sample="nih1000",
            fraction=0.1,
            iterations=2,
            batch_size=8,
            threads=1,
            progress=False,
        )

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a_notes.txt").write_text("mine")
    (mine / "results.csv").write_text("auc\n0.9\n")
    with pytest.raises(
        OutputNotOursError, match=r"holds files medgan_aug does not write there: a_notes\.txt"
    ):
        train_classifier_run(config(mine))
    assert main(["classify", "--sample", "nih1000", "--out", str(mine), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a_notes.txt" in err, err
    assert sorted(p.name for p in mine.iterdir()) == ["a_notes.txt", "results.csv"]
    leftover = tmp_path / "killed"
    leftover.mkdir()
    (leftover / ".metrics.json.abcd1234.tmp.json").write_text("{")
    train_classifier_run(config(leftover))
    assert sorted(p.name for p in leftover.iterdir()) == [
        "classifier.pt",
        "config.json",
        "losses.csv",
        "metrics.json",
    ]


def test_score_split_val_scores_the_val_split_and_leaves_test_unread(chest28_path, tmp_path, monkeypatch):
    """``--score-split val``: the same training, scored on val (for choices made before a study); the test
    split is never opened."""
    import json

    from medgan_aug.apps.classify import train_classifier_run
    from medgan_aug.apps.classify_config import ClassifierRunConfig

    common = dict(path=chest28_path, fraction=0.1, iterations=5, batch_size=16, progress=False, threads=1)
    test_run = train_classifier_run(ClassifierRunConfig(out=str(tmp_path / "test"), **common))
    opened = []
    original = MedMNISTDataset.__init__

    def spy(self, *args, **kwargs):
        opened.append(kwargs.get("split"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(MedMNISTDataset, "__init__", spy)
    val_run = train_classifier_run(
        ClassifierRunConfig(out=str(tmp_path / "val"), score_split="val", **common)
    )
    assert "test" not in opened and "val" in opened
    on_test = json.loads((test_run / "metrics.json").read_text())
    on_val = json.loads((val_run / "metrics.json").read_text())
    n_val = len(MedMNISTDataset(path=chest28_path, split="val"))
    assert (on_test["split"], on_test["n_test"]) == ("test", 233)
    assert (on_val["split"], on_val["n_test"]) == ("val", n_val) and n_val != 233
    with pytest.raises(ValueError, match="score_split must be 'test' or 'val'"):
        train_classifier_run(ClassifierRunConfig(out=str(tmp_path / "bad"), score_split="train", **common))


def test_classify_command_names_the_split_it_scored(chest28_path, tmp_path, capsys):
    from medgan_aug.cli import main

    args = [
        "classify",
        "--path",
        str(chest28_path),
        "--fraction",
        "0.1",
        "--iterations",
        "3",
        "--batch-size",
        "16",
    ]
    assert (
        main([*args, "--no-progress", "--threads", "1", "--score-split", "val", "--out", str(tmp_path / "v")])
        == 0
    )
    assert capsys.readouterr().out.startswith("val AUC ")
    assert main([*args, "--no-progress", "--threads", "1", "--out", str(tmp_path / "t")]) == 0
    assert capsys.readouterr().out.startswith("test AUC ")
