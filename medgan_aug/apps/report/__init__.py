"""The generator report: distances, precision/recall, memorization, figures and HTML.

Names load lazily (:func:`medgan_aug.utils.lazy.lazy_exports`): ``medgan-aug report --help`` reads the
torch-free :mod:`.settings` without importing the report's torch modules.
"""

from __future__ import annotations

from medgan_aug.utils.lazy import lazy_exports

_EXPORTS = {
    "medgan_aug.apps.report.figures": [
        "HEADER",
        "closest_pairs_figure",
        "grid_image",
        "loss_curves_figure",
        "nn_distance_histogram",
        "per_finding_grid",
        "read_sample_tiles",
        "real_vs_synthetic_collage",
        "sample_progression",
    ],
    "medgan_aug.apps.report.html": ["fmt", "render_html"],
    "medgan_aug.apps.report.report": ["REPORT_FILES", "write_report"],
    "medgan_aug.apps.report.run_files": [
        "load_run_record",
        "read_losses",
        "resolve_real_file",
        "run_data_source",
    ],
    "medgan_aug.apps.report.settings": ["ReportSettings"],
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
