"""The README's picture: real NIH chest X-rays beside images of the shipped NIH1000 generator.

Top row: the first 8 test images of the packaged ``nih1000`` sample; bottom row: 8 items of
``SyntheticDataset.pretrained("nih1000", seed=0)`` conditioned on those images' findings (the generator saw
the training split only, so none of the top row).

    python experiments/readme_figure.py --out experiments/results/readme/real_vs_generated.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from medgan_aug import MedMNISTDataset, SyntheticDataset
from medgan_aug.utils.atomic import atomic_save_image


def figure(out: Path, count: int = 8) -> Path:
    """Write the two-row grid (real on top, generated below) to ``out`` and return it."""
    real = MedMNISTDataset(sample="nih1000", split="test")
    images = torch.stack([torch.as_tensor(real[i]["image"]) for i in range(count)])
    labels = np.stack([np.asarray(real[i]["label"]) for i in range(count)]).astype(np.float32)
    generated = SyntheticDataset.pretrained("nih1000", count, seed=0, labels=labels)
    fakes = torch.stack([torch.as_tensor(generated[i]["image"]) for i in range(count)])
    grid = make_grid(torch.cat([images, fakes]).float(), nrow=count, padding=2, pad_value=1.0)
    grid = torch.nn.functional.interpolate(grid[None], scale_factor=3, mode="nearest")[0]
    pixels = (grid[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_image(Image.fromarray(pixels, mode="L"), out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experiments/results/readme/real_vs_generated.png"))
    print(figure(parser.parse_args().out))


if __name__ == "__main__":
    main()
