"""The generator report: distances, precision/recall, memorization, figures and HTML."""

from __future__ import annotations

from medgan_aug.apps.report.figures import (
    HEADER,
    closest_pairs_figure,
    grid_image,
    loss_curves_figure,
    nn_distance_histogram,
    per_finding_grid,
    read_sample_tiles,
    real_vs_synthetic_collage,
    sample_progression,
)
from medgan_aug.apps.report.html import fmt, render_html
from medgan_aug.apps.report.report import (
    REPORT_FILES,
    load_run_record,
    read_losses,
    resolve_real_file,
    run_data_source,
    write_report,
)
