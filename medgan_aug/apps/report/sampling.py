"""What sampling the generator costs in a report, made visible: the images it will generate, a progress bar
over them, and the seconds it took.

A DCGAN makes an image in one forward pass; a diffusion generator (``--model ddpm``) in ``num_inference_steps``
DDIM steps (Song, Meng & Ermon, ICLR 2021) of one UNet pass each, two with classifier-free guidance (Ho &
Salimans 2022), so its report spends most of its time sampling. :class:`SamplingMeter` counts every image the
generator returns (forward hooks, whoever calls it: the synthetic set, the collage, label faithfulness, the
per-finding grid) and :func:`planned_images` says beforehand how many that will be.
"""

from __future__ import annotations

import math
import time
from typing import Any

from torch import nn

from medgan_aug.data.synthetic import CHUNK_SIZE
from medgan_aug.networks.model_file import generator_family

__all__ = ["SamplingMeter", "planned_images", "sampling_settings"]


def sampling_settings(generator: nn.Module) -> dict[str, Any]:
    """The generator's family and what one image costs: DDIM steps, guidance and UNet passes (ddpm), or one
    forward pass (dcgan)."""
    family = generator_family(generator)
    if family != "ddpm":
        return {"family": family, "ddim_steps": None, "guidance_scale": None, "network_passes_per_image": 1}
    steps, scale = int(generator.num_inference_steps), float(generator.guidance_scale)
    guided = scale > 0 and int(generator.num_labels) > 0
    return {
        "family": family,
        "ddim_steps": steps,
        "guidance_scale": scale,
        "network_passes_per_image": steps * (2 if guided else 1),
    }


def planned_images(
    num_samples: int,
    *,
    num_labels: int,
    collage: int,
    faithfulness: int,
    per_finding_columns: int,
) -> int:
    """Images the report asks the generator for (a :class:`SyntheticDataset` always generates whole chunks of
    :data:`~medgan_aug.data.synthetic.CHUNK_SIZE`).

    Args:
        num_samples: the evaluated synthetic set.
        num_labels: the generator's label width (0: unconditional; then no collage, grid or faithfulness
            images of their own).
        collage: conditional generators: tiles of the real-vs-synthetic collage (their own dataset).
        faithfulness: noise vectors of label faithfulness (0 when it is not measured); each finding is
            switched on and off.
        per_finding_columns: columns of the per-finding grid (one row per finding plus "no finding").
    """

    def chunks(n: int) -> int:
        return CHUNK_SIZE * math.ceil(n / CHUNK_SIZE) if n > 0 else 0

    total = chunks(num_samples)
    if num_labels > 0:
        total += chunks(collage) + 2 * num_labels * faithfulness + (num_labels + 1) * per_finding_columns
    return total


class SamplingMeter:
    """Count the images ``generator`` returns and the seconds it spends, with an optional progress bar.

    Use as a context manager (or :meth:`start` then :meth:`stop`) around the report's work.

    Args:
        generator: the report's generator (either family).
        planned: the images expected (the bar's total; :func:`planned_images`).
        progress: show a tqdm bar.
    """

    def __init__(self, generator: nn.Module, planned: int, progress: bool) -> None:
        self.generator = generator
        self.settings = sampling_settings(generator)
        self.planned = int(planned)
        self.progress = bool(progress)
        self.images = 0
        self.seconds = 0.0
        self._started: float | None = None
        self._hooks: list[Any] = []
        self._bar: Any = None

    def _description(self) -> str:
        s = self.settings
        if s["family"] != "ddpm":
            return f"sampling ({s['family']})"
        return (
            f"sampling (ddpm: {s['ddim_steps']} DDIM steps, guidance {s['guidance_scale']:g}, "
            f"{s['network_passes_per_image']} UNet passes/image)"
        )

    def _before(self, module: nn.Module, inputs: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None
        n = int(output.shape[0])
        self.images += n
        if self._bar is not None:
            self._bar.update(n)

    def start(self) -> SamplingMeter:
        """Open the bar and hook the generator; returns self."""
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=self.planned, desc=self._description(), unit="img", disable=not self.progress, position=1
        )
        self._hooks = [
            self.generator.register_forward_pre_hook(self._before),
            self.generator.register_forward_hook(self._after),
        ]
        return self

    def stop(self) -> None:
        """Remove the hooks and close the bar (the counts stay)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> SamplingMeter:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def summary(self) -> dict[str, Any]:
        """The ``sampling`` block of metrics.json: settings, images generated, seconds, images per second."""
        return {
            **self.settings,
            "images_generated": self.images,
            "images_planned": self.planned,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images / self.seconds, 3) if self.seconds > 0 else None,
            "note": "every image the report generated (synthetic set in whole chunks of "
            f"{CHUNK_SIZE}, collage, label faithfulness, per-finding grid); seconds inside the generator",
        }
