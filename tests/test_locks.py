"""Locks between processes: one holder at a time, skip or wait, and no stale lock after a kill."""

from __future__ import annotations

import signal
import time

from medgan_aug.utils.locks import work_lock


def test_a_lock_held_elsewhere_is_skipped_or_waited_for(tmp_path, lock_holder):
    path = tmp_path / "locks" / "run-abc.lock"
    holder = lock_holder(path, seconds=1.0)  # another process holds it for a second, then ends normally
    with work_lock(path, wait=False) as held:
        assert held is False  # given up at once, nothing held
    started = time.perf_counter()
    with work_lock(path, wait=True) as held:
        assert held is True
        assert holder.wait(timeout=5) == 0  # it only came once the holder had let go
        with work_lock(path, wait=False) as again:  # held here now: a second taker is refused
            assert again is False
    assert time.perf_counter() - started > 0.2
    with work_lock(path, wait=False) as held:  # released on leaving the block
        assert held is True


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, lock_holder):
    """flock locks belong to the holder's open file: the kernel drops them when the process dies."""
    path = tmp_path / "gan-abc.lock"
    holder = lock_holder(path)
    with work_lock(path, wait=False) as held:
        assert held is False
    holder.send_signal(signal.SIGKILL)
    assert holder.wait(timeout=10) == -signal.SIGKILL
    started = time.perf_counter()
    with work_lock(path, wait=False) as held:
        assert held is True
    assert time.perf_counter() - started < 1.0
