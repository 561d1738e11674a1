"""Export a trained generator as a MONAI bundle, and the helpers its ``inference.json`` calls.

A MONAI bundle (https://monai.readthedocs.io/en/latest/mb_specification.html) is a folder that carries
a network's weights with machine-readable metadata and runnable configs::

    <bundle>/
        configs/metadata.json    versions, task, network data format (inputs: latent z (latent_dim,)
                                 and, if conditional, a finding vector (L,); output 1xHxW in [0, 1]),
                                 the training data, its source and licence, the run record
        configs/inference.json   generate N images with SyntheticDataset into an .npz (or a PNG folder)
        configs/logging.conf     Python logging set-up read by ``monai.bundle``
        models/model.pt          the EMA generator's state_dict (``torch.load(weights_only=True)``)
        models/label_pool.npy    conditional generators: the training subset's label vectors (float32
                                 (M, L)) that the "joint" / "balanced" label samplers resample
        docs/README.md           model card: what it is, how to run it, data and licences

Run it from the bundle folder (``--bundle_root`` elsewhere)::

    python -m monai.bundle run --config_file configs/inference.json --num_samples 500 --seed 1

Equality with the library: the bundle's inference builds a
:class:`medgan_aug.synthetic.SyntheticDataset` from the same weights, the same label pool and the same
seed, so its images are *exactly* those of ``SyntheticDataset.from_run(run, N, seed=seed)`` on the
same device (chunked seeding, see :mod:`medgan_aug.synthetic`); ``tests/test_bundle.py`` checks it
bit for bit on CPU.

The generator is the conditional DCGAN of Radford, Metz & Chintala, "Unsupervised Representation
Learning with Deep Convolutional Generative Adversarial Networks" (ICLR 2016), conditioned as in Mirza &
Osindero, "Conditional Generative Adversarial Nets" (arXiv:1411.1784, 2014).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.checkpoint import safe_torch_load
from medgan_aug.networks import DCGANGenerator, load_generator
from medgan_aug.synthetic import CHUNK_SIZE, SyntheticDataset, _meta_label_pool, resolve_generator_file

__all__ = [
    "BUNDLE_FILES",
    "DATA_PROVENANCE",
    "export_bundle",
    "load_bundle_dataset",
    "load_label_pool",
    "load_weights",
    "write_synthetic",
]

#: Files every exported bundle holds (conditional bundles add ``models/label_pool.npy``).
BUNDLE_FILES = (
    "configs/metadata.json",
    "configs/inference.json",
    "configs/logging.conf",
    "models/model.pt",
    "docs/README.md",
)
_LABEL_POOL = "models/label_pool.npy"
_log = logging.getLogger(__name__)

_MEDMNIST = {
    "name": "MedMNIST v2",
    "license": "CC BY 4.0",
    "citation": 'Yang et al., "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical '
    'image classification", Scientific Data 10, 41 (2023)',
}

#: Where each MedMNIST flag's images come from, and under which licence (shown in metadata and README).
DATA_PROVENANCE: dict[str, dict[str, Any]] = {
    "chestmnist": {
        "source": "NIH ChestX-ray14 (NIH Clinical Center): frontal chest radiographs, 14 findings from the "
        "official label table",
        "license": "NIH ChestX-ray14 is released for unrestricted use with attribution",
        "citation": 'Wang et al., "ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks on '
        'Weakly-Supervised Classification and Localization of Common Thorax Diseases", CVPR 2017',
        "medmnist": _MEDMNIST,
    },
    "pneumoniamnist": {
        "source": "Pediatric chest X-rays (Guangzhou Women and Children's Medical Center), "
        "normal vs pneumonia",
        "license": "CC BY 4.0",
        "citation": 'Kermany et al., "Identifying Medical Diagnoses and Treatable Diseases by Image-Based '
        'Deep Learning", Cell 172(5), 2018',
        "medmnist": _MEDMNIST,
    },
}
_UNKNOWN_PROVENANCE = {
    "source": "a MedMNIST-format dataset; see the MedMNIST documentation for the original source",
    "license": "see the licence of the original source dataset",
    "citation": "",
    "medmnist": _MEDMNIST,
}

_LOGGING_CONF = """[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=fullFormatter

[logger_root]
level=INFO
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=INFO
formatter=fullFormatter
args=(sys.stdout,)

[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""


# ----------------------------------------------------------------------------- helpers used by inference.json


def load_weights(
    network: nn.Module, path: str | os.PathLike, device: str | torch.device = "cpu"
) -> nn.Module:
    """Load a bundle's ``models/model.pt`` (a state_dict, read with ``weights_only=True``) into ``network``.

    Returns:
        ``network`` on ``device``, in eval mode.

    Raises:
        FileNotFoundError: no such file. medgan_aug.checkpoint.CheckpointError: unreadable or unsafe file.
        ValueError: the weights do not fit ``network`` (the message names the file).
    """
    state = safe_torch_load(path, map_location="cpu", what="bundle weights")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"bundle weights {path} are not a state_dict (a dict of tensors)")
    try:
        network.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"bundle weights {path} do not fit the configured network: {err}") from err
    return network.to(device).eval()


def load_label_pool(path: str | os.PathLike) -> np.ndarray:
    """Read ``models/label_pool.npy`` (float32 ``(M, L)``, no pickle)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label pool {path} does not exist (a conditional bundle needs it)")
    try:
        pool = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"label pool {path} is not a readable .npy array: {err}") from err
    if pool.ndim != 2 or pool.dtype != np.float32:
        raise ValueError(f"label pool {path} must be a float32 (M, L) array, got {pool.dtype} {pool.shape}")
    return pool


def write_synthetic(dataset: SyntheticDataset, output: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write every item of ``dataset`` to ``output``, atomically.

    * ``*.npz``: ``images`` float32 ``(N, C, H, W)`` in [0, 1] (the items' exact values), ``labels`` float32
      ``(N, L)`` when items have labels, ``label_names`` (str, when known) and ``seed``.
    * anything else is a folder: ``000000.png`` ... (8-bit, ``round(255 * image)``) and, with labels,
      ``labels.csv`` (``file`` then one column per label).

    Raises:
        FileExistsError: ``output`` exists (a non-empty folder, or a file) and ``overwrite`` is False.
    """
    if not isinstance(dataset, SyntheticDataset):
        raise TypeError(f"dataset must be a SyntheticDataset, got {type(dataset).__name__}")
    output = Path(output)
    is_npz = output.suffix == ".npz"
    occupied = output.is_file() or (output.is_dir() and any(output.iterdir()))
    if occupied and not overwrite:
        raise FileExistsError(
            f"output {output} exists; set overwrite (``--overwrite true`` for monai.bundle run) or choose "
            "another output_path"
        )
    n = len(dataset)
    images, labels = [], []
    for start in range(0, n, CHUNK_SIZE):
        batch = dataset.get_batch(np.arange(start, min(start + CHUNK_SIZE, n)))
        images.append(batch["image"].numpy())
        if "label" in batch:
            labels.append(batch["label"].numpy())
    image_array = np.concatenate(images).astype(np.float32, copy=False)
    label_array = np.concatenate(labels).astype(np.float32, copy=False) if labels else None
    names = list(dataset.label_names) if dataset.label_names is not None else None

    output.parent.mkdir(parents=True, exist_ok=True)
    if is_npz:
        arrays: dict[str, np.ndarray] = {"images": image_array, "seed": np.asarray(dataset.seed, np.int64)}
        if label_array is not None:
            arrays["labels"] = label_array
        if names is not None:
            arrays["label_names"] = np.asarray(names, dtype=str)
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, **arrays)
            _public_mode(Path(tmp))
            os.replace(tmp, output)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _log.info(f"wrote {n} synthetic images (seed {dataset.seed}) to {output}")
        return output

    from PIL import Image

    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        pixels = np.round(np.clip(image_array, 0.0, 1.0) * 255.0).astype(np.uint8)
        files = []
        for i, img in enumerate(pixels):
            name = f"{i:06d}.png"
            Image.fromarray(img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)).save(tmp_dir / name)
            files.append(name)
        if label_array is not None:
            header = names if names is not None else [f"label_{j}" for j in range(label_array.shape[1])]
            rows = [",".join(["file", *header])]
            rows += [",".join([f, *(f"{v:g}" for v in row)]) for f, row in zip(files, label_array)]
            (tmp_dir / "labels.csv").write_text("\n".join(rows) + "\n")
        _replace_dir(tmp_dir, output)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
    _log.info(f"wrote {n} synthetic images (seed {dataset.seed}) as PNG files to {output}")
    return output


def _public_mode(path: Path) -> None:
    """Give a file or folder made by ``tempfile`` (0600 / 0700) the permissions a plain create would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def _replace_dir(new: Path, target: Path) -> None:
    """Move the finished folder ``new`` to ``target``; an existing ``target`` is removed only afterwards."""
    _public_mode(new)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()


# ----------------------------------------------------------------------------- export


def _network_data_format(generator: DCGANGenerator, label_names: Sequence[str] | None) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "latent": {
            "type": "tuples",
            "format": "latent",
            "num_channels": 0,
            "spatial_shape": [generator.latent_dim],
            "dtype": "float32",
            "value_range": [],
            "is_patch_data": False,
            "channel_def": {},
            "distribution": "standard normal N(0, I); drawn per 256-item chunk from (seed, chunk)",
        }
    }
    if generator.num_labels:
        names = list(label_names) if label_names else [f"label_{j}" for j in range(generator.num_labels)]
        inputs["labels"] = {
            "type": "tuples",
            "format": "labels",
            "num_channels": 0,
            "spatial_shape": [generator.num_labels],
            "dtype": "float32",
            "value_range": [0, 1],
            "is_patch_data": False,
            "channel_def": {str(j): name for j, name in enumerate(names)},
        }
    size = generator.image_size
    return {
        "inputs": inputs,
        "outputs": {
            "pred": {
                "type": "image",
                "format": "magnitude",
                "modality": "xray",
                "num_channels": generator.out_channels,
                "spatial_shape": [size, size],
                "dtype": "float32",
                "value_range": [0, 1],
                "is_patch_data": False,
                "channel_def": {"0": "image"},
                "note": "the network ends in tanh ([-1, 1]); medgan_aug.networks.to_unit_range "
                "((x + 1) / 2, clamped) maps it to [0, 1] inside SyntheticDataset",
            }
        },
    }


def _versions() -> dict[str, Any]:
    import monai

    import medgan_aug

    required = {"medgan_aug": medgan_aug.__version__}
    try:
        import PIL  # PNG folder output

        required["pillow"] = PIL.__version__
    except ImportError:  # pragma: no cover - a dependency
        pass
    return {
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "required_packages_version": required,
    }


def _run_record(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None or not (run_dir / "config.json").is_file():
        return {}
    try:
        return json.loads((run_dir / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{run_dir / 'config.json'} is not valid JSON: {err}") from err


def _training_data(meta: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    flag = str(meta.get("flag") or record.get("data", {}).get("flag") or "")
    provenance = DATA_PROVENANCE.get(flag, _UNKNOWN_PROVENANCE)
    source = meta.get("source") or record.get("data", {}).get("source")
    subset = record.get("subset", {})
    return {
        "flag": flag,
        "task": meta.get("task") or record.get("data", {}).get("task"),
        "file": os.path.basename(source) if source else None,
        "split": "train",
        "fraction": meta.get("fraction", subset.get("fraction")),
        "subset_seed": meta.get("subset_seed", subset.get("subset_seed")),
        "num_images": meta.get("num_images", subset.get("num_images")),
        "indices_sha256": meta.get("indices_sha256", subset.get("indices_sha256")),
        **provenance,
    }


def _inference_config(
    generator: DCGANGenerator, label_names: list[str] | None, num_samples: int, seed: int
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bundle_root": ".",
        "device": "cpu",
        "ckpt_path": "$@bundle_root + '/models/model.pt'",
        "output_path": "$@bundle_root + '/outputs/synthetic.npz'",
        "overwrite": False,
        "num_samples": int(num_samples),
        "seed": int(seed),
        "network_def": {"_target_": "medgan_aug.networks.DCGANGenerator", **generator.arch},
        "network": {
            "_target_": "medgan_aug.bundle.load_weights",
            "network": "@network_def",
            "path": "@ckpt_path",
            "device": "@device",
        },
    }
    dataset: dict[str, Any] = {
        "_target_": "medgan_aug.synthetic.SyntheticDataset",
        "generator": "@network",
        "num_samples": "@num_samples",
        "seed": "@seed",
        "device": "@device",
    }
    if generator.num_labels:
        config["label_pool_path"] = f"$@bundle_root + '/{_LABEL_POOL}'"
        config["label_pool"] = {"_target_": "medgan_aug.bundle.load_label_pool", "path": "@label_pool_path"}
        config["label_sampler"] = "joint"
        dataset.update(label_sampler="@label_sampler", label_pool="@label_pool")
    if label_names is not None:
        dataset["label_names"] = list(label_names)
    config["dataset"] = dataset
    config["run"] = [
        {
            "_target_": "medgan_aug.bundle.write_synthetic",
            "dataset": "@dataset",
            "output": "@output_path",
            "overwrite": "@overwrite",
        }
    ]
    return config


def _readme(metadata: dict[str, Any], name: str) -> str:
    info = metadata["medgan_aug"]
    arch, data = info["arch"], metadata["training_data"]
    conditional = arch["num_labels"] > 0
    lines = [
        f"# {name}: DCGAN chest X-ray generator (medgan_aug bundle)",
        "",
        metadata["description"],
        "",
        "## Run",
        "",
        "From this folder (or add `--bundle_root PATH` from elsewhere):",
        "",
        "```bash",
        "python -m monai.bundle run --config_file configs/inference.json",
        "python -m monai.bundle run --config_file configs/inference.json --num_samples 1000 --seed 7 \\",
        "    --output_path outputs/seed7.npz",
        "```",
        "",
        "This writes `outputs/synthetic.npz` with `images` float32 (N, "
        f"{arch['out_channels']}, {arch['image_size']}, {arch['image_size']}) in [0, 1]"
        + (", `labels` float32 (N, L) and `label_names`." if conditional else "."),
        "An `--output_path` without `.npz` writes a folder of PNG files"
        + (" with `labels.csv`." if conditional else "."),
        "An existing output is kept unless `--overwrite true`. `--device cuda` runs the generator on a GPU.",
        "",
        "Image `i` depends only on `(seed, i)`: with the same seed, N and device the bundle gives exactly",
        "the items of `medgan_aug.SyntheticDataset.from_run(run, N, seed=seed)` (chunked seeding, 256 items",
        "per chunk).",
    ]
    if conditional:
        lines += [
            "Conditioning labels are resampled jointly from the training subset's label vectors",
            "(`models/label_pool.npy`); `--label_sampler balanced` raises rare findings.",
        ]
    lines += [
        "",
        "In Python:",
        "",
        "```python",
        "from medgan_aug.bundle import load_bundle_dataset",
        'synthetic = load_bundle_dataset("path/to/bundle", num_samples=1000, seed=0)  # a MONAI Dataset',
        "```",
        "",
        "## Network",
        "",
        "DCGAN generator (Radford et al., ICLR 2016), "
        + ("conditional on the findings vector (Mirza & Osindero 2014)" if conditional else "unconditional")
        + f": latent {arch['latent_dim']}"
        + (f" + labels {arch['num_labels']}" if conditional else "")
        + f" -> {arch['out_channels']}x{arch['image_size']}x{arch['image_size']} image; base width "
        f"{arch['base_channels']}; EMA weights with standing BatchNorm statistics. "
        "`models/model.pt` is the state_dict of `medgan_aug.networks.DCGANGenerator(**arch)` "
        "(the arch is in `configs/inference.json#network_def`).",
        "",
        "## Training data and licences",
        "",
        f"- Data: {data['source']}"
        + (f", file `{data['file']}`" if data.get("file") else "")
        + f", train split, fraction {data['fraction']} (subset seed {data['subset_seed']}, "
        f"{data['num_images']} images).",
        f"- Licence of the images: {data['license']}. Cite: {data['citation'] or 'the original source'}.",
        f"- MedMNIST format: {data['medmnist']['name']}, {data['medmnist']['license']}; cite "
        f"{data['medmnist']['citation']}.",
        f"- Training: {info['run'].get('iterations')} iterations, seed {info['run'].get('seed')}.",
        "",
        "## Intended use",
        "",
        metadata["intended_use"],
        "",
    ]
    return "\n".join(lines)


def export_bundle(
    run: str | os.PathLike,
    out: str | os.PathLike,
    overwrite: bool = False,
    num_samples: int = 64,
    seed: int = 0,
    version: str = "0.1.0",
    name: str | None = None,
) -> Path:
    """Write a MONAI bundle for a training run's EMA generator (layout in the module docstring).

    The folder is built next to ``out`` and moved into place when complete, so an interrupted export
    never leaves a half bundle under ``out``.

    Args:
        run: a run directory holding ``generator.pt`` (its ``config.json`` adds the run record), or a
            generator file.
        out: the bundle folder to create.
        overwrite: replace an existing ``out``.
        num_samples, seed: defaults of the bundle's inference (overridable at run time).
        version: the bundle's version string.
        name: the bundle's name (default: ``out``'s folder name).

    Returns:
        The bundle folder.

    Raises:
        FileNotFoundError: no such run / generator file.
        FileExistsError: ``out`` exists (and is not an empty folder) and ``overwrite`` is False.
        ValueError: bad ``num_samples``/``seed``, or an unusable generator file or run record.
    """
    for arg, value, low in (("num_samples", num_samples, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{arg} must be an integer >= {low}, got {value!r}")
    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"bundle folder {out} exists; pass --overwrite (overwrite=True) to replace it")
    gen_file = resolve_generator_file(run)
    run_dir = gen_file.parent if Path(run).is_file() else Path(run)
    generator, meta = load_generator(gen_file)
    meta = dict(meta or {})
    record = _run_record(run_dir)
    label_names = meta.get("label_names")
    label_names = list(label_names) if label_names is not None else None
    if generator.num_labels and label_names is not None and len(label_names) != generator.num_labels:
        label_names = None  # e.g. a binary flag stores two class names for one label column
    name = name or out.name

    run_info = {
        k: meta.get(k)
        for k in ("iterations", "seed", "ema_decay", "fraction", "subset_seed", "conditional")
        if k in meta
    }
    training_data = _training_data(meta, record)
    kind = "conditional" if generator.num_labels else "unconditional"
    metadata = {
        "schema": "medgan_aug bundle metadata, following the MONAI bundle specification (metadata.json)",
        "version": str(version),
        "changelog": {str(version): "exported by medgan-aug export-bundle"},
        **_versions(),
        "name": name,
        "task": f"Generate synthetic {generator.image_size}x{generator.image_size} chest X-rays "
        f"({training_data['flag'] or 'MedMNIST'})",
        "description": f"A {kind} DCGAN generator trained with medgan_aug on "
        f"{training_data['num_images']} real training images ({training_data['flag']}); it makes "
        "synthetic images (with their finding labels when conditional) for data augmentation.",
        "authors": "medgan_aug (model trained and exported by its user)",
        "copyright": "see the licences of the training data below",
        "intended_use": "Research on data augmentation for chest X-ray classifiers. Not for clinical use: "
        "synthetic images are not diagnostic and the labels are conditioning inputs, not findings read "
        "from the images.",
        "data_source": training_data["source"],
        "data_type": "npz (MedMNIST format)",
        "training_data": training_data,
        "references": [
            "Radford, Metz & Chintala, Unsupervised Representation Learning with Deep Convolutional "
            "Generative Adversarial Networks, ICLR 2016",
            "Mirza & Osindero, Conditional Generative Adversarial Nets, arXiv:1411.1784, 2014",
            training_data["citation"],
            training_data["medmnist"]["citation"],
        ],
        "network_data_format": _network_data_format(generator, label_names),
        "medgan_aug": {
            "arch": generator.arch,
            "label_names": label_names,
            "label_sampler": "joint" if generator.num_labels else None,
            "chunk_size": CHUNK_SIZE,
            "seeding": "item i depends only on (seed, i): latents and labels of chunk k = i // chunk_size "
            "come from medgan_aug.synthetic.chunk_generator(seed, k)",
            "run": run_info,
            "training_config": record.get("config", {}),
        },
    }
    metadata["references"] = [r for r in metadata["references"] if r]
    metadata["medgan_aug"]["training_config"].pop("out", None)  # a local path of the exporting machine
    metadata["medgan_aug"]["training_config"].pop("path", None)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for sub in ("configs", "models", "docs"):
            (tmp / sub).mkdir()
        torch.save(
            {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}, tmp / "models/model.pt"
        )
        if generator.num_labels:
            pool = _meta_label_pool(meta, int(generator.num_labels), gen_file)
            np.save(tmp / _LABEL_POOL, np.ascontiguousarray(pool, dtype=np.float32), allow_pickle=False)
        (tmp / "configs/metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
        inference = _inference_config(generator, label_names, int(num_samples), int(seed))
        (tmp / "configs/inference.json").write_text(json.dumps(inference, indent=2) + "\n")
        (tmp / "configs/logging.conf").write_text(_LOGGING_CONF)
        (tmp / "docs/README.md").write_text(_readme(metadata, name))
        if out.exists() and not overwrite and any(out.iterdir()):  # appeared meanwhile
            raise FileExistsError(f"bundle folder {out} exists; pass --overwrite to replace it")
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        _replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def load_bundle_dataset(
    bundle: str | os.PathLike, num_samples: int | None = None, seed: int | None = None, **override: Any
) -> SyntheticDataset:
    """The bundle's ``dataset`` (a :class:`SyntheticDataset`) through MONAI's ``ConfigParser``.

    Args:
        bundle: the bundle folder.
        num_samples, seed: override the config's defaults.
        override: other config ids to override (e.g. ``device="cuda"``, ``label_sampler="balanced"``).
    """
    from monai.bundle import ConfigParser

    bundle = Path(bundle)
    config = bundle / "configs" / "inference.json"
    if not config.is_file():
        raise FileNotFoundError(f"{bundle} is not a medgan_aug bundle: {config} does not exist")
    parser = ConfigParser()
    parser.read_config(config)
    parser.read_meta(bundle / "configs" / "metadata.json")
    parser["bundle_root"] = os.fspath(bundle)
    if num_samples is not None:
        parser["num_samples"] = num_samples
    if seed is not None:
        parser["seed"] = seed
    for key, value in override.items():
        parser[key] = value
    return parser.get_parsed_content("dataset")
