"""The low-data augmentation study: config, grid, runner, summary and figures."""

from __future__ import annotations

from medgan_aug.apps.study.comparisons import (
    classifier_seed_of,
    compare_conditions,
    comparison_pairs,
    pool_primary,
    variance_table,
)
from medgan_aug.apps.study.conditions import MIXERS, condition_batch_transform
from medgan_aug.apps.study.config import (
    Condition,
    RunSpec,
    StudyConfig,
    classifier_run_seed,
    data_identity,
    expand_grid,
    finished_keys,
    gan_key,
    gan_run_config,
    load_study_config,
    parse_condition,
    run_key,
    select_shard,
)
from medgan_aug.apps.study.figures import plot_study
from medgan_aug.apps.study.folder import check_study_folder, read_scores, study_folder_problem
from medgan_aug.apps.study.runner import (
    CLASSIFIER_DEFAULTS,
    EVALUATION_DEFAULTS,
    SYNTHETIC_DEFAULTS,
    data_source,
    ensure_gan,
    evaluate_gans,
    run_group,
    run_groups,
)
from medgan_aug.apps.study.sections import (
    BootstrapSettings,
    ClassifierBudget,
    EvaluationSettings,
    SyntheticBudget,
)
from medgan_aug.apps.study.study import run_study, torchrun_shard
from medgan_aug.apps.study.summary import (
    BASE_COLUMNS,
    PROTOCOL,
    collect_runs,
    compare_to_real,
    condition_table,
    gan_evaluation,
    generator_table,
    write_results_csv,
    write_summary,
)
