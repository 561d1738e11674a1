"""Classification metrics with bootstrap intervals, generative distances, feature extractor, label faithfulness,
memorization audit."""

from __future__ import annotations

from medgan_aug.metrics.bootstrap import paired_bootstrap_delta, pooled_paired_bootstrap_delta
from medgan_aug.metrics.classification import METRICS, evaluate_scores, rank_auc
from medgan_aug.metrics.extractor import (
    EXTRACTOR_FORMAT_NOTE,
    EXTRACTOR_VERSION,
    classifier_scores,
    conditional_fidelity,
    data_fingerprint,
    default_extractor_name,
    extractor_features,
    validation_auc,
    weights_fingerprint,
)
from medgan_aug.metrics.faithfulness import label_faithfulness, real_label_separation
from medgan_aug.metrics.generative import (
    density_coverage,
    distribution_metrics,
    frechet_distance,
    kernel_distance,
    precision_recall,
)
from medgan_aug.metrics.hierarchical_bootstrap import hierarchical_paired_bootstrap_delta, resampled_auc
from medgan_aug.metrics.inception import fid_helper_inception_features, fid_helper_model_path
from medgan_aug.metrics.inference import (
    bootstrap_p_value,
    holm_adjust,
    paired_t_interval,
    percentile_interval,
    variance_components,
)
from medgan_aug.metrics.memorization import (
    EXACT_COPY_RMS,
    MemorizationAudit,
    memorization_audit,
    nearest_neighbours,
)
