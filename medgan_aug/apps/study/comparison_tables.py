"""Markdown of the study's comparisons for ``summary.md``: the primary verdict, the exploratory tables with
Holm-adjusted p-values, and the variance between and within study seeds."""

from __future__ import annotations

from typing import Any

import numpy as np

from medgan_aug.apps.study.comparisons import ALPHA

__all__ = ["primary_lines", "reading_note", "comparison_lines", "variance_lines"]


def _signed(value: float) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:+.3f}"


def _interval(low: float, high: float) -> str:
    return "—" if not (np.isfinite(low) and np.isfinite(high)) else f"[{low:+.3f}, {high:+.3f}]"


def _p(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.3f}" if value >= 0.001 else "<0.001"


def _per_seed(per_seed: dict[int, float]) -> str:
    return ", ".join(f"s{seed} {_signed(delta)}" for seed, delta in sorted(per_seed.items()))


def _detectable(mde: float) -> str:
    return "—" if mde is None or not np.isfinite(mde) else f"≥ {mde:.3f}"


def _reading(reading: str, mde: float) -> str:
    """A reading, with the effect the comparison could have detected after "no detectable difference"."""
    if reading == "no detectable difference" and mde is not None and np.isfinite(mde):
        return f"{reading} (could detect {_detectable(mde)})"
    return reading


def _unit(entry: dict[str, Any]) -> str:
    """What the test level of the bootstrap resampled: "test patients (53)" or "test images"."""
    return f"test patients ({entry['n_units']})" if entry.get("unit") == "patients" else "test images"


def _seeds(entry: dict[str, Any]) -> str:
    classifier_seeds = entry["n_classifier_seeds"]
    if classifier_seeds == [1]:
        return str(len(entry["seeds"]))
    per = str(classifier_seeds[0]) if len(classifier_seeds) == 1 else "/".join(map(str, classifier_seeds))
    return f"{len(entry['seeds'])} x {per}"


_VERDICT_TEXT = {
    "gain": "gain (the 95% interval lies above zero)",
    "loss": "loss (the 95% interval lies below zero)",
    "no detectable difference": "no detectable difference (the 95% interval contains zero)",
}


def _primary_verdict(primary: dict[str, Any]) -> str:
    text = _VERDICT_TEXT[primary["verdict"]]
    if primary["verdict"] == "no detectable difference" and np.isfinite(primary["mde"]):
        text = text[:-1] + f"; could detect {_detectable(primary['mde'])})"
    return text


def primary_lines(primary: dict[str, Any] | None) -> list[str]:
    """The primary comparison's section: its pooled ΔAUC, interval, per-seed deltas and verdict at 95%."""
    lines = ["## Primary comparison", ""]
    if not primary:
        return lines + [
            "No primary comparison is declared (config key `primary`): every comparison below is exploratory.",
            "",
        ]
    what = (
        f"`{primary['condition']}` vs `{primary['baseline']}` ({primary['classifier']}), ΔAUC pooled over "
        f"fractions {', '.join(f'{f:g}' for f in primary['fractions'])} (mean of the per-fraction ΔAUC)"
    )
    if primary["missing_fractions"]:
        missing = ", ".join(f"{f:g}" for f in primary["missing_fractions"])
        return lines + [
            f"Declared: {what}. **Not available yet**: no paired runs at fraction(s) {missing}.",
            "",
        ]
    lines += [
        f"Declared in the study config before the results: {what}.",
        "",
        f"**ΔAUC {_signed(primary['delta'])}, 95% CI {_interval(primary['ci_low'], primary['ci_high'])} "
        f"(study seeds and {_unit(primary)} resampled, {primary['n_seeds']} study seeds), bootstrap p = "
        f"{_p(primary['p_value'])}. Verdict at 95%: {_primary_verdict(primary)}.**",
        "",
        f"Power: with {primary['n_seeds']} study seeds and the spread of their ΔAUC, this comparison detects a "
        f"true ΔAUC of {_detectable(primary['mde'])} with 80% power (two-sided paired t at 5%); smaller effects "
        'can hide in a "no detectable difference".',
        "",
        f"Per study seed (mean over the fractions): {_per_seed(primary['per_seed'])}; paired t 95% CI over "
        f"them {_interval(primary['t_low'], primary['t_high'])}.",
        "",
    ]
    if primary["n_seeds"] < 2:
        lines += [
            "With one study seed the seed level cannot be resampled: the interval covers test images only and "
            "says nothing about the next GAN and training subset.",
            "",
        ]
    return lines


def reading_note(comparisons: list[dict[str, Any]], conditions: list[str]) -> list[str]:
    """How to read the exploratory tables, and what the placebo can and cannot say in this study."""
    m = sum(np.isfinite(e["p_value"]) for e in comparisons)
    lines = [
        f"**Exploratory**: every comparison in the tables below is exploratory, whether or not it is part of "
        f"the primary one: it was not declared before the results, so its numbers are leads, not findings. "
        f"Its p-value (two-sided bootstrap, 2 min(P(Δ* ≤ 0), P(Δ* ≥ 0)) with the +1 correction) is "
        f"Holm-adjusted over all {m} exploratory comparisons of this summary (Holm 1979: family-wise error "
        f"at most {ALPHA:g}), and a row reads gain or loss only when its adjusted p-value is below {ALPHA:g}.",
        "",
        "A gain counts as label information only where `real+synthetic@R` beats `real+shuffled@R` (the same "
        "generated images with their labels permuted: the placebo rows).",
    ]
    seeds = min((len(e["seeds"]) for e in comparisons), default=0)
    if 1 < seeds < 10:
        lines[-1:-1] = [
            f"With as few as {seeds} study seeds the seed level of the bootstrap is coarse and a little narrow "
            "(it takes the between-seed variance with divisor K, not K − 1); where it and the paired "
            "t-interval disagree, the wider one is the safer reading.",
            "",
        ]
    if not any(c.startswith("real+shuffled@") for c in conditions):
        lines[-1] += (
            " This study has no `real+shuffled@R` condition, so no gain here can be credited to labels."
        )
    return lines + [""]


def comparison_lines(entries: list[dict[str, Any]], primary: dict[str, Any] | None) -> list[str]:
    """One fraction's comparison table (ΔAUC vs real, and vs the placebo), all rows exploratory."""
    if not entries:
        return []
    unit = _unit(entries[0])
    lines = [
        "ΔAUC vs real and vs the shuffled-label placebo (exploratory; seeds: study seeds x classifier seeds):",
        "",
        f"| comparison | classifier | seeds | ΔAUC [95% CI: seeds + {unit}] | 95% CI: {unit} only | per-seed ΔAUC "
        "| paired t 95% CI | detectable (80% power) | p | p Holm | reading |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        name = f"{e['condition']} vs {e['baseline']}" + (" (placebo)" if e["kind"] == "placebo" else "")
        if primary and (e["condition"], e["baseline"], e["classifier"]) == (
            primary["condition"],
            primary["baseline"],
            primary["classifier"],
        ):
            name += " (in the primary)"
        lines.append(
            f"| {name} | {e['classifier']} | {_seeds(e)} | {_signed(e['delta'])} {_interval(e['ci_low'], e['ci_high'])} "
            f"| {_interval(e['images_ci_low'], e['images_ci_high'])} | {_per_seed(e['per_seed'])} "
            f"| {_interval(e['t_low'], e['t_high'])} | {_detectable(e['mde'])} | {_p(e['p_value'])} "
            f"| {_p(e['p_holm'])} | {_reading(e['reading'], e['mde'])} |"
        )
    return lines + [""]


def variance_lines(table: list[dict[str, Any]]) -> list[str]:
    """The variance between study seeds and within them (classifier seeds), when a study seed has several."""
    if not table:
        return []
    lines = [
        "## AUC variance between and within study seeds",
        "",
        "One-way random-effects ANOVA estimates (method of moments; Searle, Casella & McCulloch 1992, "
        "*Variance Components*, ch. 3): *between* is the variance of AUC between study seeds (GAN and "
        "training subset), *within* the variance between classifier seeds of one study seed (initialisation "
        "and batch order); a negative between estimate is shown as 0.",
        "",
        "| fraction | condition | classifier | study seeds x classifier seeds | between: var (sd) "
        "| within: var (sd) | share between |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in table:
        sizes = sorted(set(e["sizes"]))
        per = str(sizes[0]) if len(sizes) == 1 else "/".join(map(str, sizes))
        lines.append(
            f"| {e['fraction']:g} | {e['condition']} | {e['classifier']} | {e['n_groups']} x {per} "
            f"| {e['between']:.2e} ({np.sqrt(e['between']):.3f}) | {e['within']:.2e} ({np.sqrt(e['within']):.3f}) "
            f"| {e['share_between']:.0%} |"
        )
    return lines + [""]
