"""The in-domain feature extractor behind the generative distances: fitted on real images, cached by
data and weights fingerprint, plus conditional fidelity and (opt-in) Inception features.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.engines.classifier_trainer import extract_features, train_classifier
from medgan_aug.metrics.classification import evaluate_scores
from medgan_aug.metrics.generative import check_positive_int
from medgan_aug.networks.classifiers import CLASSIFIER_NAMES, build_classifier, scores_from_logits
from medgan_aug.networks.model_file import load_classifier, save_classifier

__all__ = [
    "EXTRACTOR_FORMAT_NOTE",
    "data_fingerprint",
    "weights_fingerprint",
    "default_extractor_name",
    "fit_feature_extractor",
    "load_or_fit_extractor",
    "extractor_features",
    "conditional_fidelity",
    "inception_features",
]


#: One sentence every report prints beside the Fréchet numbers.
EXTRACTOR_FORMAT_NOTE = (
    "Distances are computed on the penultimate features of an in-domain CNN trained on the real training "
    "split (not ImageNet Inception-v3): they are not Inception FIDs and are comparable only between runs "
    "evaluated with the same extractor file."
)


def data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of a split's images and labels (identifies the data an extractor was trained on)."""
    digest = hashlib.sha256()
    for arr in (np.ascontiguousarray(images), np.ascontiguousarray(labels)):
        digest.update(str((arr.dtype.str, arr.shape)).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's state (names, dtypes, shapes, values): the extractor's identity in reports.

    Unlike the file's own hash it does not depend on how the file was written (torch's zip records the
    temporary file name of an atomic save).
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return digest.hexdigest()


def default_extractor_name(
    dataset: Any, arch: str = "small_cnn", iterations: int = 1000, seed: int = 0
) -> str:
    """File name that identifies an extractor: flag, size, arch, iterations, seed and data fingerprint."""
    fp = data_fingerprint(dataset.images, dataset.labels)[:12]
    return f"extractor_{dataset.flag}_{dataset.size}px_{arch}_{iterations}it_seed{seed}_{fp}.pt"


def _check_dataset(dataset: Any) -> None:
    missing = [
        a
        for a in ("images", "labels", "task", "num_labels", "num_channels", "size", "flag")
        if not hasattr(dataset, a)
    ]
    if missing:
        raise TypeError(
            f"dataset must be a MedMNISTDataset (real training split); {type(dataset).__name__} lacks "
            f"{missing}"
        )
    if len(dataset) < 2:
        raise ValueError(f"dataset has {len(dataset)} images; the feature extractor needs a training split")


def fit_feature_extractor(
    dataset: Any,
    path: str | os.PathLike | None = None,
    *,
    arch: str = "small_cnn",
    iterations: int = 1000,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the in-domain feature extractor on the real training split and (optionally) save it.

    The extractor is the project's downstream classifier (:func:`medgan_aug.networks.build_classifier`)
    trained to predict the findings with :func:`medgan_aug.engines.train_classifier`; its penultimate
    embedding (``features``) is the feature space of every distance in this module. The saved file's
    meta records what makes numbers comparable: flag, image size, arch, iterations, seed, and the
    SHA-256 of the training data.

    Args:
        dataset: the real training split (:class:`medgan_aug.data.MedMNISTDataset`, ``split="train"``).
        path: where to save it (:func:`medgan_aug.networks.save_classifier`, atomic); None: do not save.
        arch: ``"small_cnn"`` (default) or ``"resnet18"``.
        iterations, batch_size, lr, seed: training settings (deterministic for a seed on CPU).
        device: torch device. progress: show a progress bar.

    Returns:
        ``(model in eval mode, meta)``.
    """
    _check_dataset(dataset)
    if arch not in CLASSIFIER_NAMES:
        raise ValueError(f"arch must be one of {CLASSIFIER_NAMES}, got {arch!r}")
    iterations = check_positive_int("iterations", iterations)
    model = build_classifier(arch, dataset.num_channels, dataset.num_labels, dataset.size, seed=seed)
    stats = train_classifier(
        model,
        dataset,
        task=dataset.task,
        iterations=iterations,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        progress=progress,
    )
    meta = {
        "purpose": "medgan_aug feature extractor",
        "flag": str(dataset.flag),
        "task": str(dataset.task),
        "label_names": [str(n) for n in dataset.label_names],
        "image_size": int(dataset.size),
        "arch": arch,
        "train_iterations": iterations,
        "batch_size": int(batch_size),
        "lr": float(lr),
        "seed": int(seed),
        "train_size": int(len(dataset)),
        "data_sha256": data_fingerprint(dataset.images, dataset.labels),
        "source": os.fspath(getattr(dataset, "source", "")),
        "final_loss": float(np.mean(stats["losses"][-20:])),
    }
    if path is not None:
        save_classifier(model, path, meta)
    return model.eval(), meta


def load_or_fit_extractor(
    path: str | os.PathLike,
    dataset: Any,
    **fit_kwargs: Any,
) -> tuple[nn.Module, dict[str, Any], bool]:
    """Load the extractor saved at ``path``, or fit it on ``dataset`` and save it there.

    A loaded extractor must fit the data (channels, label width, image size), else ValueError. If it
    was trained on different data than ``dataset`` (SHA-256 in its meta), a warning says so: the numbers
    then stay comparable with other runs evaluated by the same file, but not with runs evaluated by an
    extractor of ``dataset``.

    Args:
        path: extractor file (read if it exists, written otherwise).
        dataset: the real training split.
        **fit_kwargs: passed to :func:`fit_feature_extractor` when fitting (ignored when the file exists:
            the file is the extractor's identity; its meta records how it was trained).

    Returns:
        ``(model, meta, fitted_now)``.
    """
    _check_dataset(dataset)
    path = Path(path)
    if not path.exists():
        model, meta = fit_feature_extractor(dataset, path, **fit_kwargs)
        return model, meta, True
    model, meta = load_classifier(path)
    arch = getattr(model, "arch", {})
    wanted = {
        "in_channels": dataset.num_channels,
        "num_outputs": dataset.num_labels,
        "image_size": dataset.size,
    }
    wrong = {k: (arch.get(k), v) for k, v in wanted.items() if arch.get(k) != v}
    if wrong:
        details = ", ".join(f"{k}: file {a} vs data {b}" for k, (a, b) in wrong.items())
        raise ValueError(f"extractor {path} does not fit the data ({details}); use another --extractor")
    if not hasattr(model, "features"):
        raise ValueError(f"extractor {path}: model has no features() embedding")
    fp = data_fingerprint(dataset.images, dataset.labels)
    if meta.get("data_sha256") not in (None, fp):
        warnings.warn(
            f"extractor {path} was trained on other data (sha256 {str(meta.get('data_sha256'))[:12]}...) "
            f"than {getattr(dataset, 'source', 'this dataset')} ({fp[:12]}...)",
            stacklevel=2,
        )
    return model, meta, False


def extractor_features(
    model: nn.Module, images: torch.Tensor, batch_size: int = 256, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Extractor embeddings (N, D) float64 of images (N, C, H, W) in [0, 1] (checked)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(
            f"images must be an (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}"
        )
    if images.numel() and (float(images.min()) < -1e-6 or float(images.max()) > 1 + 1e-6):
        raise ValueError(
            f"images must be in [0, 1] (got [{float(images.min()):.3g}, {float(images.max()):.3g}]); "
            "convert generator output with networks.to_unit_range"
        )
    return extract_features(model, images.float(), batch_size=batch_size, device=device).astype(np.float64)


@torch.no_grad()
def conditional_fidelity(
    model: nn.Module,
    images: torch.Tensor,
    labels: Any,
    *,
    task: str = "multi-label, binary-class",
    label_names: Sequence[str] | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """The extractor-classifier's AUC on generated images against the labels they were generated with.

    Does a "cardiomegaly" sample look like cardiomegaly to a classifier trained on real images? Compare
    with the same classifier's AUC on held-out real images (its ceiling here): near that value means
    the conditioning is visible; near 0.5 means the generator ignores it. Findings without both classes
    among ``labels`` are skipped (see :func:`medgan_aug.metrics.evaluate_scores`).

    Args:
        model: the extractor (a trained classifier).
        images: (N, C, H, W) generated images in [0, 1].
        labels: (N, L) conditioning label vectors.
        task: medmnist task string.
        label_names: names of the L findings.

    Returns:
        :func:`medgan_aug.metrics.evaluate_scores` output (``auc``, ``acc``, ``auc_per_label``, ...).
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(
            f"images must be an (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}"
        )
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be ({images.shape[0]}, L) to match the images, got {labels.shape}")
    was_training = model.training
    model.eval()
    scores = []
    for i in range(0, images.shape[0], batch_size):
        logits = model(images[i : i + batch_size].float())
        scores.append(scores_from_logits(logits, task).double().numpy())
    model.train(was_training)
    return evaluate_scores(labels, np.concatenate(scores), task=task, label_names=label_names)


def inception_features(
    images: torch.Tensor,
    weights_path: str | os.PathLike,
    batch_size: int = 64,
) -> np.ndarray:
    """Optional: 2048-d Inception-v3 pool features (torch-fidelity) from a *local* weights file.

    Only for comparison with the literature (an Inception FID is :func:`frechet_distance` on these):
    on 28 px grayscale X-rays upsampled to 299 px RGB the ImageNet features fit poorly, which is why the
    in-domain extractor is the default. Needs the optional ``torch-fidelity`` package and the user's
    copy of its ``inception-v3-compat`` weights; nothing is downloaded (a missing file is an error).

    Args:
        images: (N, C, H, W) in [0, 1]; grayscale is repeated to RGB; torch-fidelity resizes to 299 px.
        weights_path: local Inception-v3 weights file for torch-fidelity's ``FeatureExtractorInceptionV3``.
        batch_size: inference batch size.

    Raises:
        FileNotFoundError: ``weights_path`` does not exist.
        ImportError: torch-fidelity is not installed.
    """
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise FileNotFoundError(f"Inception weights file {weights_path} not found (nothing is downloaded)")
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as err:
        raise ImportError(
            "Inception FID needs the optional package torch-fidelity (pip install torch-fidelity) and a "
            "local copy of its Inception-v3 weights"
        ) from err
    model = FeatureExtractorInceptionV3(  # pragma: no cover - needs the optional package and user weights
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights_path)
    ).eval()
    out = []  # pragma: no cover
    with torch.no_grad():  # pragma: no cover
        for i in range(0, images.shape[0], batch_size):
            b = images[i : i + batch_size].float()
            b = b.repeat(1, 3, 1, 1) if b.shape[1] == 1 else b
            out.append(model((b.clamp(0, 1) * 255).round().to(torch.uint8))[0].double().cpu().numpy())
    return np.concatenate(out)  # pragma: no cover
