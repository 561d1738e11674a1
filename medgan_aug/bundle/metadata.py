"""The metadata, inference config and README of an exported MONAI bundle
(MONAI bundle specification: https://docs.monai.io/en/stable/mb_specification.html), for either generator
family: the DCGAN (``--model dcgan``) or the diffusion generator (``--model ddpm``), whose bundle rebuilds
:class:`medgan_aug.networks.DiffusionGenerator` and exposes its DDIM steps and guidance scale as config ids.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan_aug.bundle.files import LABEL_POOL_FILE
from medgan_aug.networks.model_file import generator_family

__all__ = [
    "MEDMNIST_PROVENANCE",
    "DATA_PROVENANCE",
    "UNKNOWN_PROVENANCE",
    "LOGGING_CONF",
    "FAMILY_TEXT",
    "network_data_format",
    "package_versions",
    "run_record",
    "training_data_record",
    "inference_config",
    "bundle_readme",
]


logger = logging.getLogger(__name__)


MEDMNIST_PROVENANCE = {
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
        "medmnist": MEDMNIST_PROVENANCE,
    },
    "pneumoniamnist": {
        "source": "Pediatric chest X-rays (Guangzhou Women and Children's Medical Center), "
        "normal vs pneumonia",
        "license": "CC BY 4.0",
        "citation": 'Kermany et al., "Identifying Medical Diagnoses and Treatable Diseases by Image-Based '
        'Deep Learning", Cell 172(5), 2018',
        "medmnist": MEDMNIST_PROVENANCE,
    },
}


UNKNOWN_PROVENANCE = {
    "source": "a MedMNIST-format dataset; see the MedMNIST documentation for the original source",
    "license": "see the licence of the original source dataset",
    "citation": "",
    "medmnist": MEDMNIST_PROVENANCE,
}


LOGGING_CONF = """[loggers]
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


#: Per generator family: the network's name, what it is (with its papers) and what its ``latent`` input is.
FAMILY_TEXT: dict[str, dict[str, Any]] = {
    "dcgan": {
        "name": "DCGAN",
        "network": "DCGAN generator (Radford et al., ICLR 2016)",
        "conditioning": "conditional on the findings vector (Mirza & Osindero 2014)",
        "latent": "standard normal N(0, I); drawn per 256-item chunk from (seed, chunk)",
        "output_note": "the network ends in tanh ([-1, 1]); medgan_aug.networks.to_unit_range "
        "((x + 1) / 2, clamped) maps it to [0, 1] inside SyntheticDataset",
        "references": [
            "Radford, Metz & Chintala, Unsupervised Representation Learning with Deep Convolutional "
            "Generative Adversarial Networks, ICLR 2016",
            "Mirza & Osindero, Conditional Generative Adversarial Nets, arXiv:1411.1784, 2014",
        ],
    },
    "ddpm": {
        "name": "diffusion (DDPM)",
        "network": "MONAI DiffusionModelUNet trained as a denoising diffusion probabilistic model (Ho et al., "
        "NeurIPS 2020) and sampled with deterministic DDIM (eta 0; Song et al., ICLR 2021)",
        "conditioning": "conditional on the findings vector as a cross-attention context, with classifier-free "
        "guidance (Ho & Salimans 2022)",
        "latent": "standard normal N(0, I): the flattened initial noise x_T of the DDIM chain at the padded "
        "size; drawn per 256-item chunk from (seed, chunk)",
        "output_note": "the DDIM chain ends in [-1, 1] (clamped, padding cropped); medgan_aug.networks."
        "to_unit_range ((x + 1) / 2, clamped) maps it to [0, 1] inside SyntheticDataset",
        "references": [
            "Ho, Jain & Abbeel, Denoising Diffusion Probabilistic Models, NeurIPS 2020",
            "Song, Meng & Ermon, Denoising Diffusion Implicit Models, ICLR 2021",
            "Ho & Salimans, Classifier-Free Diffusion Guidance, arXiv:2207.12598, 2022",
            "Pinaya et al., Generative AI for Medical Imaging: extending the MONAI Framework, arXiv:2307.15208, "
            "2023",
        ],
    },
}


def network_data_format(generator: nn.Module, label_names: Sequence[str] | None) -> dict[str, Any]:
    """The ``network_data_format`` of metadata.json: latent (and label) inputs, the image output."""
    text = FAMILY_TEXT[generator_family(generator)]
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
            "distribution": text["latent"],
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
                "note": text["output_note"],
            }
        },
    }


def package_versions() -> dict[str, Any]:
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


def run_record(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None or not (run_dir / "config.json").is_file():
        return {}
    try:
        return json.loads((run_dir / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{run_dir / 'config.json'} is not valid JSON: {err}") from err


def training_data_record(meta: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    flag = str(meta.get("flag") or record.get("data", {}).get("flag") or "")
    provenance = DATA_PROVENANCE.get(flag, UNKNOWN_PROVENANCE)
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


def inference_config(
    generator: nn.Module, label_names: list[str] | None, num_samples: int, seed: int
) -> dict[str, Any]:
    """``configs/inference.json``: rebuild the generator, load its weights, build a :class:`SyntheticDataset`
    and write it with :func:`medgan_aug.bundle.write_synthetic`. A diffusion generator's DDIM steps and
    guidance scale are the config ids ``sampling_steps`` and ``guidance_scale`` (``--sampling_steps 25`` on
    ``python -m monai.bundle run``)."""
    family = generator_family(generator)
    network_def: dict[str, Any] = {
        "_target_": f"medgan_aug.networks.{type(generator).__name__}",
        **generator.arch,
    }
    config: dict[str, Any] = {
        "bundle_root": ".",
        "device": "cpu",
        "ckpt_path": "$@bundle_root + '/models/model.pt'",
        "output_path": "$@bundle_root + '/outputs/synthetic.npz'",
        "overwrite": False,
        "num_samples": int(num_samples),
        "seed": int(seed),
        **(
            {
                "sampling_steps": network_def["num_inference_steps"],
                "guidance_scale": network_def["guidance_scale"],
            }
            if family == "ddpm"
            else {}
        ),
        "network_def": network_def,
        "network": {
            "_target_": "medgan_aug.bundle.load_weights",
            "network": "@network_def",
            "path": "@ckpt_path",
            "device": "@device",
        },
    }
    if family == "ddpm":
        network_def.update(num_inference_steps="@sampling_steps", guidance_scale="@guidance_scale")
    dataset: dict[str, Any] = {
        "_target_": "medgan_aug.data.SyntheticDataset",
        "generator": "@network",
        "num_samples": "@num_samples",
        "seed": "@seed",
        "device": "@device",
    }
    if generator.num_labels:
        config["label_pool_path"] = f"$@bundle_root + '/{LABEL_POOL_FILE}'"
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


def _network_text(family: str, arch: dict[str, Any], conditional: bool) -> str:
    """The README's network paragraph."""
    text = FAMILY_TEXT[family]
    how = text["conditioning"] if conditional else "unconditional"
    cls = "DiffusionGenerator" if family == "ddpm" else "DCGANGenerator"
    if family == "ddpm":
        c = arch["base_channels"]
        shape = (
            f": UNet channels ({c}, {2 * c}, {2 * c}), {arch['num_res_blocks']} residual block(s) per level, "
            f"{arch['image_size']} px images made at {arch['padded_size']} px (the border cropped), "
            f"{arch['num_train_timesteps']} training timesteps, {arch['num_inference_steps']} DDIM steps per image"
            + (f", guidance scale {arch['guidance_scale']:g}" if conditional else "")
            + "; EMA weights. Each image costs one UNet pass per DDIM step (two with guidance > 0): "
            "`--sampling_steps N` and `--guidance_scale W` change speed and images."
        )
    else:
        shape = (
            f": latent {arch['latent_dim']}"
            + (f" + labels {arch['num_labels']}" if conditional else "")
            + f" -> {arch['out_channels']}x{arch['image_size']}x{arch['image_size']} image; base width "
            f"{arch['base_channels']}; EMA weights with standing BatchNorm statistics."
        )
    return (
        f"{text['network']}, {how}{shape} `models/model.pt` is the state_dict of "
        f"`medgan_aug.networks.{cls}(**arch)` (the arch is in `configs/inference.json#network_def`)."
    )


def bundle_readme(metadata: dict[str, Any], name: str) -> str:
    """``docs/README.md``: the model card (what it is, how to run it, data and licences)."""
    info = metadata["medgan_aug"]
    arch, data = info["arch"], metadata["training_data"]
    family = info.get("family", "dcgan")
    conditional = arch["num_labels"] > 0
    lines = [
        f"# {name}: {FAMILY_TEXT[family]['name']} chest X-ray generator (medgan_aug bundle)",
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
        "An existing output is kept unless `--overwrite true`, which replaces only what this inference wrote",
        "(a `.npz` it signed, a folder of its PNG files); any other file or folder is never replaced.",
        "`--device cuda` runs the generator on a GPU.",
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
        _network_text(family, arch, conditional),
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
