"""Device and thread defaults."""

from __future__ import annotations

import os

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
    monkeypatch.setattr(train_module, "safe_thread_count", lambda: 1)
    monkeypatch.setattr(train_module, "_train_gan", lambda *a: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_gan(GANConfig(path=str(chest28_path), out=str(tmp_path / "r")))
        train_gan(GANConfig(path=str(chest28_path), out=str(tmp_path / "r"), threads=2))
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_resolve_device_names_the_problem():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
