"""The HTML page of ``medgan-aug report``: tables of distances, per-finding fidelity and label faithfulness
(each number from the extractor beside the extractor's own val/test AUC), and the figures."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

__all__ = ["fmt", "instrument_cell", "render_html"]


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return html.escape(str(v))


def _gif_width(files: dict[str, str], run_dir: Path) -> int | None:
    """Show the (native-size) GIF at twice its width, pixels kept sharp by CSS."""
    name = files.get("progression_gif")
    if not name or not (run_dir / name).is_file():
        return None
    from PIL import Image

    with Image.open(run_dir / name) as im:
        return 2 * im.width


def _arch_text(arch: dict[str, Any], family: str = "dcgan") -> str:
    if family == "ddpm":
        return html.escape(
            f"diffusion (DDPM-trained MONAI DiffusionModelUNet, DDIM-sampled) {arch.get('image_size')}px "
            f"(worked at {arch.get('padded_size')}px), base channels {arch.get('base_channels')}, "
            f"{arch.get('num_labels')} labels"
        )
    return html.escape(
        f"DCGAN {arch.get('image_size')}px, latent {arch.get('latent_dim')}, base channels "
        f"{arch.get('base_channels')}, {arch.get('num_labels')} labels"
    )


def _sampling_text(sampling: dict[str, Any] | None, not_applicable: dict[str, str] | None) -> str:
    """What sampling cost (images, seconds; DDIM steps and guidance for a diffusion generator) and the
    report items that do not apply to this generator family."""
    if not sampling:
        return ""
    text = (
        f"<p>Sampling: {sampling['images_generated']} images generated for this report in "
        f"{fmt(sampling['seconds'], 3)} s ({fmt(sampling['images_per_second'], 3)} images/s)"
    )
    if sampling.get("ddim_steps") is not None:
        text += (
            f", {sampling['ddim_steps']} DDIM steps at guidance scale {fmt(sampling['guidance_scale'], 3)} "
            f"({sampling['network_passes_per_image']} UNet passes per image)"
        )
    text += ".</p>"
    if not_applicable:
        items = "".join(
            f"<li><b>{html.escape(key.replace('_', ' '))}</b>: {html.escape(why)}</li>"
            for key, why in not_applicable.items()
        )
        text += f"<p>Not applicable to this generator family:</p><ul>{items}</ul>"
    return text


def _img(name: str | None, alt: str, inline: bool, run_dir: Path, width: int | None = None) -> str:
    if not name:
        return f"<p><em>{html.escape(alt)}: not available for this run.</em></p>"
    src = html.escape(name)
    if inline:
        mime = "image/gif" if name.endswith(".gif") else "image/png"
        src = f"data:{mime};base64," + base64.b64encode((run_dir / name).read_bytes()).decode()
    size = f' width="{int(width)}"' if width else ""
    return (
        f'<figure><img src="{src}" alt="{html.escape(alt)}"{size}>'
        f"<figcaption>{html.escape(alt)}</figcaption></figure>"
    )


_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; }
img { max-width: 100%; image-rendering: pixelated; }
figure { margin: 1em 0; }
figcaption { color: #555; font-size: 90%; }
pre { background: #f6f6f6; padding: 8px; }
.note { background: #fff8e0; padding: 6px 10px; border-left: 4px solid #e0b000; }
"""


_METRIC_LABELS = {
    "frechet_distance": "Fréchet distance (in-domain features) ↓",
    "kid": "KID, unbiased MMD² cubic kernel ↓",
    "precision": "precision (fidelity) ↑",
    "recall": "recall (diversity) ↑",
    "density": "density (≈1 ideal)",
    "coverage": "coverage ↑",
}


def _row(*cells: str) -> str:
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def instrument_cell(note: dict[str, Any] | None) -> str:
    """The extractor's version and val/test AUC, written beside a number it produced."""
    if not note:
        return "– (pixels)"
    return f"{fmt(note['extractor_version'])}: {fmt(note['val_auc'], 3)} / {fmt(note['test_auc'], 3)}"


def _metric_rows(metrics: dict[str, Any]) -> list[str]:
    d, mem, cond = metrics["distances"], metrics["memorization"], metrics["conditional_fidelity"]
    faith = metrics.get("label_faithfulness")
    note = instrument_cell(d.get("instrument"))
    rows = [
        _row(
            label,
            f"{fmt(d[key]['value'])} ± {fmt(d[key]['value_std'], 2)}",
            f"{fmt(d[key]['floor'])} ± {fmt(d[key]['floor_std'], 2)}",
            fmt(d[key].get("heldout")),
            note,
        )
        for key, label in _METRIC_LABELS.items()
    ]
    if cond is not None:
        rows.append(
            _row(
                "conditional AUC: extractor on synthetic images vs their conditioning labels ↑",
                fmt(cond["auc"]),
                "–",
                fmt(cond["reference_real_heldout_auc"]),
                instrument_cell(cond.get("instrument")),
            )
        )
    if faith is not None:
        rows.append(
            _row(
                "label faithfulness: mean score shift when one finding is switched on (fixed noise) ↑",
                fmt(faith["mean_shift"]),
                "0 (labels ignored)",
                fmt((faith.get("real_heldout") or {}).get("mean_shift")),
                instrument_cell(faith.get("instrument")),
            )
        )
        rows.append(
            _row(
                "label faithfulness: mean AUC of on vs off images by that finding's score ↑",
                fmt(faith["mean_auc"]),
                "0.5 (labels ignored)",
                fmt((faith.get("real_heldout") or {}).get("mean_auc")),
                instrument_cell(faith.get("instrument")),
            )
        )
    for space in ("pixel", "feature"):
        a = mem[space]
        rows.append(
            _row(
                f"memorization ({html.escape(a['space'])}): share of synthetic images at or below the 1st "
                "percentile of real-to-real nearest-neighbour distances ↓",
                fmt(a["share_flagged"]),
                f"{fmt(a['percentile'] / 100)} (by construction)",
                fmt(a["heldout_share_flagged"]),
                instrument_cell(a.get("instrument")),
            )
        )
    inception = metrics.get("inception")
    if inception:
        fd = inception["frechet_distance"]
        rows.append(
            _row(
                "Inception FID (optional)",
                fmt(fd["value"]),
                fmt(fd["floor"]),
                fmt(fd.get("heldout")) if fd.get("heldout") is not None else "–",
                html.escape(str(inception.get("features", "Inception-v3"))),
            )
        )
    return rows


def _per_label_table(cond: dict[str, Any] | None, ext: dict[str, Any]) -> str:
    if cond is None:
        return ""
    reference = cond["reference_real_heldout_auc_per_label"]
    val, test = ext.get("val_auc_per_label") or {}, ext.get("test_auc_per_label") or {}
    cells = "".join(
        _row(html.escape(k), fmt(v, 3), fmt(reference.get(k), 3), fmt(val.get(k), 3), fmt(test.get(k), 3))
        for k, v in cond["auc_per_label"].items()
    )
    return (
        "<details><summary>conditional AUC per finding</summary><table>"
        "<tr><th>finding</th><th>synthetic</th><th>held-out real (val+test)</th><th>extractor val AUC</th>"
        f"<th>extractor test AUC</th></tr>{cells}</table></details>"
    )


def _faithfulness_table(faith: dict[str, Any] | None) -> str:
    if faith is None:
        return ""
    cells = "".join(
        _row(
            html.escape(k),
            f"{fmt(v['shift'], 3)} ± {fmt(v['shift_std'], 2)}",
            fmt(v.get("real_heldout_shift"), 3),
            fmt(v["auc"], 3),
            fmt(v.get("classifier_val_auc"), 3),
            fmt(v.get("classifier_test_auc"), 3),
        )
        for k, v in faith["per_label"].items()
    )
    real = faith.get("real_heldout") or {}
    means = _row(
        "<b>mean</b>",
        fmt(faith["mean_shift"], 3),
        fmt(real.get("mean_shift"), 3),
        fmt(faith["mean_auc"], 3),
        "",
        "",
    )
    return (
        "<h2>Label faithfulness</h2>"
        f"<p>For {faith['n']} fixed noise vectors (base label vectors: {html.escape(faith['base_labels'])}), "
        "each finding is switched on and then off in the generator's label vector, nothing else changed. "
        "<b>Shift</b>: mean (± sd) change of the extractor-classifier's score for that finding (on minus "
        "off; 0 if the generator ignores the label). <b>AUC</b>: how well that score tells the on images "
        "from the off images (0.5 if ignored). The classifier's own AUC on real val and test images bounds "
        "what can be seen: a finding it does not detect on real images (≈0.5) cannot show here. "
        "<b>Real images</b>: the same classifier's mean score on held-out real images with the finding minus "
        "on those without, the shift a generator that drew the finding as real images show it would reach "
        "(small when the classifier's scores stay near a low base rate).</p>"
        "<table><tr><th>finding</th><th>score shift (on − off)</th><th>real images: shift (with − without)"
        "</th><th>AUC on vs off</th>"
        f"<th>classifier val AUC</th><th>classifier test AUC</th></tr>{cells}{means}</table>"
    )


def _extractor_text(ext: dict[str, Any]) -> str:
    sel = ext.get("selection")
    how = (
        f"trained on the real training split and selected on the validation split (val AUC every "
        f"{fmt(sel['every'])} steps; chosen: step {fmt(sel['best_iteration'])} of at most "
        f"{fmt(ext['max_iterations'])})"
        if sel
        else f"an older extractor trained {fmt(ext['train_iterations'])} steps on the training split, not "
        "selected on val"
    )
    return (
        f"<p>Extractor {fmt(ext['version'])}: {html.escape(str(ext['file']))} ({fmt(ext['arch'])}; weights "
        f"sha256 {html.escape(str(ext['weights_sha256'])[:16])}…), {how}. Its AUC on real images: "
        f"<b>val {fmt(ext['val_auc'], 3)}, test {fmt(ext['test_auc'], 3)}</b> (val+test "
        f"{fmt(ext.get('heldout_auc'), 3)}; its own training images {fmt(ext['train_auc'], 3)}); the last "
        "column of the table repeats val / test beside every number the extractor produced. The test "
        "split took no part in fitting or selecting it. The extractor has seen the real training split, "
        "so compare the synthetic column with the held-out column as well as with the floor.</p>"
    )


def _anchored_section(block: dict[str, Any] | None) -> str:
    """The headline table: generated and real training images against held-out patients, per feature space."""
    if not block:
        return ""
    rows = []
    for space in block["spaces"].values():
        fd, prec, rec = space["frechet_distance"], space["precision"], space["recall"]
        rows.append(
            _row(
                html.escape(space["features"]),
                f"<b>{fmt(space['ratio'], 3)}</b> ± {fmt(space['ratio_std'], 2)}",
                f"{fmt(fd['synthetic'])} / {fmt(fd['train'])}",
                f"{fmt(fd['floor'])} ± {fmt(fd['floor_std'], 2)} ({html.escape(space['floor_kind'])})",
                f"{fmt(prec['synthetic'], 3)} / {fmt(prec['train'], 3)}",
                f"{fmt(rec['synthetic'], 3)} / {fmt(rec['train'], 3)}",
                str(space["n"]),
            )
        )
    return "\n".join(
        [
            "<h2>Distance to held-out patients (headline)</h2>",
            '<p class="note">Every set is compared with held-out real images (val + test: patients the '
            "generator never saw) at equal n. <b>Ratio</b> = FD(synthetic, held-out) / FD(real training "
            "images, held-out): 1 means generated images are as close to new patients as the real training "
            "images are; below 1 closer, above 1 farther. The floor is the FD between two halves of the "
            "training split (patient-disjoint where the data file gives patient ids). A trained extractor "
            "may flatter images like its training images: read the neutral spaces beside it.</p>",
            "<table><tr><th>feature space</th><th>FD ratio</th><th>FD synthetic / real training</th>"
            "<th>floor</th><th>precision synthetic / training</th><th>recall synthetic / training</th>"
            "<th>n</th></tr>",
            *rows,
            "</table>",
        ]
    )


def render_html(metrics: dict[str, Any], record: dict[str, Any], inline: bool = False) -> str:
    """One self-contained page: metric table with floors, figures (relative paths or inline), config.

    Args:
        metrics: what :func:`write_report` returns.
        record: the run's ``config.json``.
        inline: embed the images as base64 (one file) instead of relative paths.
    """
    run_dir = Path(metrics["run"])
    d, px, files = metrics["distances"], metrics["memorization"]["pixel"], metrics["files"]
    gen, data, ext = metrics["generator"], metrics["data"], metrics["extractor"]
    name = html.escape(run_dir.name)

    def img(key: str, caption: str, width: int | None = None) -> str:
        return _img(files.get(key), caption, inline, run_dir, width)

    kind = "conditional" if gen["conditional"] else "unconditional"
    family = gen.get("family", "dcgan")
    title = "Diffusion generator report" if family == "ddpm" else "GAN report"
    losses_caption = (
        "DDPM noise-prediction loss (faint: per iteration; solid: moving average)"
        if family == "ddpm"
        else "G and D losses (faint: per iteration; solid: moving average) and D mean logits"
    )
    config_json = html.escape(json.dumps(record.get("config", {}), indent=2), quote=False)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}: {name}</title>',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{title}: {name}</h1>",
        f"<p>Generator: {_arch_text(gen['arch'], family)}, {kind}, {fmt(gen['iterations'])} iterations. "
        f"Real data: {html.escape(data['real_file'])} ({data['n_real_train']} train images, of which the GAN "
        f"saw {data['n_gan_train']}; {data['n_heldout']} held-out val+test). "
        f"{metrics['synthetic']['num_samples']} synthetic images, seed {metrics['synthetic']['seed']}.</p>",
        _sampling_text(metrics.get("sampling"), metrics.get("not_applicable")),
        f'<p class="note">{html.escape(metrics["note"])} The <b>floor</b> is the same metric between two '
        f"disjoint halves of the real training split of the same size (n = {d['n']}, {d['repeats']} random "
        "splits, mean ± sd): what a perfect generator would score. Held-out: real val+test images in place "
        "of the synthetic ones.</p>",
        _anchored_section(metrics.get("heldout_anchored")),
        "<h2>Numbers</h2>",
        "<table><tr><th>metric</th><th>synthetic</th><th>floor (real vs real)</th>"
        "<th>held-out real</th><th>instrument: extractor val / test AUC</th></tr>",
        *_metric_rows(metrics),
        "</table>",
        _per_label_table(metrics["conditional_fidelity"], ext),
        _extractor_text(ext),
        _faithfulness_table(metrics.get("label_faithfulness")),
        "<h2>Real vs synthetic</h2>",
        img("real_vs_synthetic", "real training images (left) and generated images (right)"),
        "<h2>Training progression (fixed noise)</h2>",
        img("progression", "fixed-noise samples over training, one row per snapshot"),
        img(
            "progression_gif",
            "animated: the whole fixed-noise sample grid over training",
            _gif_width(files, run_dir),
        ),
        "<h2>Losses</h2>",
        img("losses", losses_caption),
        "<h2>One row per finding</h2>",
        img(
            "per_finding",
            "each row conditioned on one finding alone (first row: no finding); same noise in every row",
        ),
        "<h2>Memorization audit</h2>",
        "<p>For each synthetic image: RMS pixel distance to its nearest GAN-training image. "
        "Reference: the same "
        "for held-out real images (never seen by the GAN). Threshold = 1st percentile of the held-out "
        f"distances = {fmt(px['threshold'])}; <b>{fmt(100 * px['share_flagged'], 3)}%</b> of synthetic "
        f"images are at or below it (held-out real: {fmt(100 * px['heldout_share_flagged'], 3)}%); "
        f"{px['n_exact_copies']} exact copies; median synthetic/held-out nearest-neighbour distance ratio "
        f"{fmt(px['median_ratio_synthetic_to_heldout'], 3)}. A low share does not prove privacy; a high one "
        "is a warning.</p>",
        img("memorization_pairs", "closest synthetic/training pairs (RMS pixel distance under each pair)"),
        img("memorization_hist", "nearest-training-image distances: synthetic vs held-out real"),
        f"<h2>Run configuration</h2><pre>{config_json}</pre>",
        '<p>Full numbers: <a href="metrics.json">metrics.json</a>.</p>',
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
