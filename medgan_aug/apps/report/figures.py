"""Figures of the generator report: image grids and collages (PIL), curves and histograms (matplotlib).

Every function writes one file atomically (temporary file in the same folder, then ``os.replace``) and
returns its path. Image collages are composed with PIL at an integer upscale (nearest neighbour, so
pixels stay pixels) and have a size that follows from their arguments; plots use matplotlib's
object-oriented API with the Agg canvas (no pyplot state, no display needed).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from medgan_aug.networks.dcgan import to_unit_range
from medgan_aug.utils.atomic import atomic_save_figure, atomic_save_image

__all__ = [
    "HEADER",
    "grid_image",
    "real_vs_synthetic_collage",
    "read_sample_tiles",
    "sample_progression",
    "loss_curves_figure",
    "per_finding_grid",
    "closest_pairs_figure",
    "nn_distance_histogram",
]


#: Height in pixels of the text strip above (or beside) image grids.
HEADER = 20


_BG = 255  # white background between tiles and behind text


_LABEL_WIDTH = 130  # width of the row-label column (per-finding grid, progression)


def _font(size: int = 12) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # old Pillow or no FreeType: the bitmap font
        return ImageFont.load_default()


def _as_images(name: str, images: Any) -> torch.Tensor:
    t = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if t.ndim != 4 or t.shape[1] not in (1, 3) or t.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, 1|3, H, W) tensor, got {tuple(t.shape)}")
    return t.detach().cpu().float().clamp(0.0, 1.0)


def grid_image(
    images: Any, nrow: int = 8, padding: int = 1, scale: int = 1, background: int = _BG
) -> Image.Image:
    """Tile (N, C, H, W) images in [0, 1] into a grid (``nrow`` per row), upscaled by ``scale``.

    ``background`` (0..255) fills the padding; torchvision's ``save_image`` (the trainer's sample
    grids) uses 0.

    Size: ``(nrow * (W + padding) + padding) * scale`` by ``(rows * (H + padding) + padding) * scale``
    with ``rows = ceil(N / nrow)``; grayscale images give an ``"L"`` image, RGB an ``"RGB"`` one.
    """
    t = _as_images("images", images)
    n, c, h, w = t.shape
    nrow = max(1, min(int(nrow), n))
    rows = math.ceil(n / nrow)
    grid = np.full(
        ((rows * (h + padding) + padding), (nrow * (w + padding) + padding), c), background, np.uint8
    )
    tiles = (t.permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8)
    for i in range(n):
        r, q = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + q * (w + padding)
        grid[y : y + h, x : x + w] = tiles[i]
    image = Image.fromarray(grid[..., 0] if c == 1 else grid, "L" if c == 1 else "RGB")
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return image


def _titled(image: Image.Image, title: str) -> Image.Image:
    out = Image.new(
        image.mode, (image.width, image.height + HEADER), _BG if image.mode == "L" else (255,) * 3
    )
    out.paste(image, (0, HEADER))
    ImageDraw.Draw(out).text((4, 3), title, fill=0 if image.mode == "L" else (0, 0, 0), font=_font())
    return out


def real_vs_synthetic_collage(
    real: Any,
    synthetic: Any,
    path: str | os.PathLike,
    *,
    nrow: int = 8,
    scale: int = 3,
    gap: int = 12,
    titles: tuple[str, str] = ("real (GAN training images)", "synthetic"),
) -> Path:
    """Side-by-side grids: real images left, generated images right (same count and layout).

    Size: ``2 * grid_width + gap`` by ``grid_height + HEADER`` (grid sizes as in :func:`grid_image`).
    """
    left = _titled(grid_image(real, nrow, 1, scale), titles[0])
    right = _titled(grid_image(synthetic, nrow, 1, scale), titles[1])
    if left.mode != right.mode:
        left, right = left.convert("RGB"), right.convert("RGB")
    out = Image.new(
        left.mode,
        (left.width + gap + right.width, max(left.height, right.height)),
        _BG if left.mode == "L" else (255,) * 3,
    )
    out.paste(left, (0, 0))
    out.paste(right, (left.width + gap, 0))
    return atomic_save_image(out, path)


def read_sample_tiles(path: str | os.PathLike, image_size: int, count: int, padding: int = 1) -> np.ndarray:
    """The first ``count`` tiles of a trainer sample grid (torchvision ``save_image``, ``nrow =
    ceil(sqrt(n_samples))``, ``padding`` px) as uint8 ``(count, H, W)``."""
    with Image.open(path) as im:
        grid = np.asarray(im.convert("L"))
    step = image_size + padding
    per_row = (grid.shape[1] - padding) // step
    rows = (grid.shape[0] - padding) // step
    if per_row < 1 or rows < 1 or (grid.shape[1] - padding) % step or (grid.shape[0] - padding) % step:
        raise ValueError(
            f"{path}: a {grid.shape[1]}x{grid.shape[0]} image is not a grid of {image_size}px tiles with "
            f"{padding}px padding"
        )
    count = min(count, per_row * rows)
    tiles = []
    for i in range(count):
        r, q = divmod(i, per_row)
        y, x = padding + r * step, padding + q * step
        tiles.append(grid[y : y + image_size, x : x + image_size])
    return np.stack(tiles)


def sample_progression(
    samples: Sequence[tuple[int, str | os.PathLike]],
    image_size: int,
    grid_path: str | os.PathLike,
    gif_path: str | os.PathLike,
    *,
    columns: int = 8,
    max_rows: int = 12,
    scale: int = 2,
    gif_scale: int = 1,
    gif_levels: int = 64,
    max_frames: int = 24,
    frame_ms: int = 500,
) -> tuple[Path, Path]:
    """Fixed-noise samples over training: a grid (one row per snapshot) and an animated GIF.

    Args:
        samples: ``(iteration, png)`` of the trainer's ``samples/iter_*.png`` grids, any order.
        image_size: tile size of those grids.
        grid_path: PNG with one row per snapshot (at most ``max_rows``, evenly spaced, last included),
            the first ``columns`` fixed-noise samples, and the iteration at the left.
        gif_path: GIF with one frame per snapshot (at most ``max_frames``, evenly spaced; the whole
            sample grid, upscaled by ``gif_scale``, reduced to ``gif_levels`` grey levels to keep the file
            small, captioned with the iteration), looping.

    Size of the grid: ``_LABEL_WIDTH + (columns * (s + 1) + 1) * scale`` wide and
    ``rows * (s + 2) * scale`` high (``s = image_size``; each row is a one-row grid).
    """
    if not samples:
        raise ValueError("no sample grids to show (the run has no samples/iter_*.png)")
    if not (isinstance(gif_levels, int) and 2 <= gif_levels <= 256):
        raise ValueError(f"gif_levels must be an integer in [2, 256], got {gif_levels!r}")
    ordered = sorted((int(it), Path(p)) for it, p in samples)
    if len(ordered) > max_rows:
        pick = np.unique(np.linspace(0, len(ordered) - 1, max_rows).round().astype(int))
        shown = [ordered[i] for i in pick]
    else:
        shown = ordered
    rows = []
    for _, p in shown:
        tiles = read_sample_tiles(p, image_size, columns)
        rows.append(grid_image(torch.from_numpy(tiles).float().div(255.0)[:, None], columns, 1, scale))
    width = _LABEL_WIDTH + max(r.width for r in rows)
    out = Image.new("L", (width, sum(r.height for r in rows)), _BG)
    draw = ImageDraw.Draw(out)
    y = 0
    for (it, _), r in zip(shown, rows):
        out.paste(r, (_LABEL_WIDTH, y))
        draw.text((6, y + r.height // 2 - 7), f"iteration {it}", fill=0, font=_font())
        y += r.height
    grid_path = atomic_save_image(out, grid_path)

    if len(ordered) > max_frames:
        pick = np.unique(np.linspace(0, len(ordered) - 1, max_frames).round().astype(int))
        ordered = [ordered[i] for i in pick]
    step = 256 // gif_levels
    frames = []
    for it, p in ordered:
        with Image.open(p) as im:
            grey = np.asarray(im.convert("L")).astype(np.int32)
        grey = (grey // step) * step + step // 2  # fewer grey levels: the GIF compresses ~2x better
        frame = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")
        if gif_scale != 1:
            frame = frame.resize((frame.width * gif_scale, frame.height * gif_scale), Image.NEAREST)
        frames.append(_titled(frame, f"iteration {it}"))
    gif_path = atomic_save_image(
        frames[0],
        gif_path,
        save_all=True,
        append_images=frames[1:],
        duration=int(frame_ms),
        loop=0,
        optimize=True,
    )
    return grid_path, gif_path


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or values.size < 2:
        return values
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def loss_curves_figure(
    losses: dict[str, np.ndarray],
    path: str | os.PathLike,
    *,
    window: int | None = None,
    figsize: tuple[float, float] = (9.0, 3.6),
    dpi: int = 100,
) -> Path:
    """G and D losses (raw, faint; moving average, solid) and D's mean logits on real and fake; for a
    diffusion run (a ``loss`` column, no ``loss_d``/``loss_g``) its DDPM noise-prediction loss alone.

    Args:
        losses: columns of the trainer's ``losses.csv`` (``iteration``, ``loss_d``, ``loss_g`` and
            optionally ``d_real``, ``d_fake``; or ``iteration`` and ``loss``) as arrays.
        path: PNG to write; its size is ``figsize * dpi`` pixels.
        window: moving-average window in iterations (default: 2% of the run, at least 1).
    """
    gan = "loss_d" in losses and "loss_g" in losses
    for key in ("iteration",) + (("loss_d", "loss_g") if gan or "loss" not in losses else ("loss",)):
        if key not in losses:
            raise ValueError(f"losses lacks the column {key!r} (columns: {sorted(losses)})")
    from matplotlib.figure import Figure

    it = np.asarray(losses["iteration"], dtype=float)
    window = max(1, int(round(0.02 * it.size))) if window is None else max(1, int(window))
    has_logits = "d_real" in losses and "d_fake" in losses
    fig = Figure(figsize=figsize)
    axes = fig.subplots(1, 2 if has_logits else 1, squeeze=False)[0]
    curves = (
        (("loss_d", "D loss", "tab:red"), ("loss_g", "G loss", "tab:blue"))
        if gan
        else (("loss", "noise-prediction MSE", "tab:blue"),)
    )
    for key, name, colour in curves:
        v = np.asarray(losses[key], dtype=float)
        axes[0].plot(it, v, color=colour, alpha=0.2, linewidth=0.6)
        axes[0].plot(it, _smooth(v, window), color=colour, linewidth=1.6, label=f"{name} (mean of {window})")
    axes[0].set_xlabel("iteration")
    axes[0].set_title("losses")
    axes[0].legend(loc="best", fontsize=8)
    if has_logits:
        for key, name, colour in (("d_real", "D(real)", "tab:green"), ("d_fake", "D(fake)", "tab:purple")):
            v = np.asarray(losses[key], dtype=float)
            axes[1].plot(it, _smooth(v, window), color=colour, linewidth=1.4, label=f"{name} logit")
        axes[1].axhline(0.0, color="grey", linewidth=0.6)
        axes[1].set_xlabel("iteration")
        axes[1].set_title("discriminator mean logits (smoothed)")
        axes[1].legend(loc="best", fontsize=8)
    fig.tight_layout()
    return atomic_save_figure(fig, path, dpi)


@torch.no_grad()
def per_finding_grid(
    generator: torch.nn.Module,
    label_names: Sequence[str],
    path: str | os.PathLike,
    *,
    columns: int = 8,
    seed: int = 0,
    scale: int = 2,
) -> Path:
    """Conditional generators: one row per finding (that finding alone), plus a "no finding" row.

    Every row uses the same ``columns`` noise vectors, so differences between rows come from the label.
    Size: ``_LABEL_WIDTH + (columns * (s + 1) + 1) * scale`` by ``(L + 1) * (s + 1) * scale + scale``.
    """

    num_labels = int(getattr(generator, "num_labels", 0))
    if num_labels < 1:
        raise ValueError("per_finding_grid needs a conditional generator (num_labels > 0)")
    names = [str(n) for n in label_names]
    if len(names) != num_labels:
        raise ValueError(f"label_names has {len(names)} names but the generator takes {num_labels} labels")
    z = torch.randn(columns, generator.latent_dim, generator=torch.Generator().manual_seed(int(seed)))
    generator.eval()
    device = next(generator.parameters()).device
    rows = [("no finding", torch.zeros(columns, num_labels))]
    for j, name in enumerate(names):
        y = torch.zeros(columns, num_labels)
        y[:, j] = 1.0
        rows.append((name, y))
    images = torch.cat([to_unit_range(generator(z.to(device), y.to(device))).cpu() for _, y in rows])
    grid = grid_image(images, columns, 1, scale)
    out = Image.new(
        grid.mode, (_LABEL_WIDTH + grid.width, grid.height), _BG if grid.mode == "L" else (255,) * 3
    )
    out.paste(grid, (_LABEL_WIDTH, 0))
    draw = ImageDraw.Draw(out)
    row_h = (generator.image_size + 1) * scale
    for r, (name, _) in enumerate(rows):
        draw.text((6, scale + r * row_h + row_h // 2 - 7), name, fill=0, font=_font())
    return atomic_save_image(out, path)


def closest_pairs_figure(
    synthetic: Any,
    train: Any,
    pairs: Sequence[dict[str, Any]],
    path: str | os.PathLike,
    *,
    threshold: float | None = None,
    scale: int = 3,
) -> Path:
    """The generated images closest to a training image (top row) above their nearest training image.

    Args:
        synthetic: (N, C, H, W) generated images in [0, 1].
        train: (M, C, H, W) the GAN's training images.
        pairs: :meth:`medgan_aug.metrics.MemorizationAudit.closest` entries.
        threshold: the audit threshold, printed in the caption.
    Size: ``(k * (W + 1) + 1) * scale`` by ``2 * (H + 1) * scale + scale + 2 * HEADER``.
    """
    if not pairs:
        raise ValueError("no pairs to show")
    syn = _as_images("synthetic", synthetic)
    real = _as_images("train", train)
    top = syn[[p["synthetic_index"] for p in pairs]]
    bottom = real[[p["train_index"] for p in pairs]]
    grid = grid_image(torch.cat([top, bottom]), len(pairs), 1, scale)
    out = Image.new(
        grid.mode, (grid.width, grid.height + 2 * HEADER), _BG if grid.mode == "L" else (255,) * 3
    )
    out.paste(grid, (0, HEADER))
    draw = ImageDraw.Draw(out)
    fill = 0 if grid.mode == "L" else (0, 0, 0)
    caption = "top: synthetic closest to a training image; bottom: that training image; RMS distance"
    if threshold is not None:
        caption += f" (flag <= {threshold:.3f})"
    draw.text((4, 3), caption, fill=fill, font=_font())
    tile = (syn.shape[3] + 1) * scale
    small = _font(10)
    for i, p in enumerate(pairs):
        draw.text(
            (scale + i * tile + 2, grid.height + HEADER + 3), f"{p['distance']:.3f}", fill=fill, font=small
        )
    return atomic_save_image(out, path)


def nn_distance_histogram(
    synthetic_distances: np.ndarray,
    heldout_distances: np.ndarray,
    threshold: float,
    path: str | os.PathLike,
    *,
    space: str = "pixel",
    figsize: tuple[float, float] = (6.0, 3.4),
    dpi: int = 100,
) -> Path:
    """Histograms of nearest-training-image distances: generated vs held-out real, with the threshold."""
    from matplotlib.figure import Figure

    syn, held = np.asarray(synthetic_distances, float), np.asarray(heldout_distances, float)
    fig = Figure(figsize=figsize)
    ax = fig.subplots()
    hi = float(max(syn.max(), held.max())) or 1.0
    bins = np.linspace(0.0, hi * 1.02, 40)
    ax.hist(
        held, bins=bins, density=True, alpha=0.55, color="tab:green", label=f"held-out real (n={held.size})"
    )
    ax.hist(syn, bins=bins, density=True, alpha=0.55, color="tab:orange", label=f"synthetic (n={syn.size})")
    ax.axvline(
        threshold,
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"1st pct. real-to-real = {threshold:.3f}",
    )
    ax.set_xlabel(f"distance to nearest training image ({space}, RMS)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return atomic_save_figure(fig, path, dpi)
