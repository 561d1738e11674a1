"""Device and thread defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from medgan_aug.utils.devices import resolve_device, safe_thread_count


def test_safe_thread_count_leaves_half_the_cpus_and_shares_them_among_jobs(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert [safe_thread_count(j) for j in (1, 2, 3, 8, 9)] == [8, 4, 2, 1, 1]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert safe_thread_count() == 1  # a 2-core machine: the 1 thread that measured fastest under load
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert safe_thread_count() == 1
    with pytest.raises(ValueError, match="jobs must be an integer >= 1"):
        safe_thread_count(0)


def test_training_without_threads_uses_the_safe_default_and_restores_the_callers(
    chest28_path, tmp_path, monkeypatch
):
    from medgan_aug.apps import train as train_module
    from medgan_aug.apps.train import GANConfig, train_gan

    seen = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)  # 2 CPUs: default 1
    monkeypatch.setattr(train_module, "_train_gan", lambda *a: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_gan(GANConfig(path=str(chest28_path), out=str(tmp_path / "r")))
        train_gan(GANConfig(path=str(chest28_path), out=str(tmp_path / "r"), threads=2))
        with pytest.warns(UserWarning, match="threads=100000 is more than the 2 CPUs"):
            train_gan(GANConfig(path=str(chest28_path), out=str(tmp_path / "r"), threads=100000))
        assert seen == [1, 2, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_resolve_device_names_the_problem():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_thread_counts_are_bounded_by_the_cpus_and_checked(monkeypatch):
    from medgan_aug.utils.devices import torch_thread_count

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert [torch_thread_count(t) for t in (None, 1, 3, 4)] == [2, 1, 3, 4]
    assert torch_thread_count(None, jobs=2) == 1
    with pytest.warns(
        UserWarning, match="threads=100000 is more than the 4 CPUs this process may use: using 4"
    ):
        assert torch_thread_count(100000) == 4
    for bad in (0, -2, True, 2.5, "2"):
        with pytest.raises(ValueError, match=f"threads must be an integer >= 1, got {bad!r}"):
            torch_thread_count(bad)


def test_study_command_bounds_and_checks_threads(monkeypatch, capsys, tmp_path):
    """``study --threads 100000`` runs with the CPUs it has (warned), ``--threads 0`` is refused in one line
    (it used to mean the default)."""
    import warnings

    from medgan_aug.apps.study import study as study_module
    from medgan_aug.cli import main
    from medgan_aug.utils.devices import usable_cpu_count

    seen = []
    monkeypatch.setattr(
        study_module, "run_study", lambda config, out, **k: seen.append(torch.get_num_threads()) or Path(out)
    )
    before = torch.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            assert (
                main(["study", "--config", "quick", "--out", str(tmp_path / "o"), "--threads", "100000"]) == 0
            )
        assert seen == [usable_cpu_count()]
        warned = capsys.readouterr().err
        assert f"threads=100000 is more than the {usable_cpu_count()} CPUs this process may use" in warned
        assert main(["study", "--config", "quick", "--out", str(tmp_path / "o"), "--threads", "0"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.endswith("threads must be an integer >= 1, got 0") and len(err.splitlines()) == 1
        assert seen == [usable_cpu_count()]
    finally:
        torch.set_num_threads(before)
