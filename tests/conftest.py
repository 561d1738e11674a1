"""Shared fixtures: the real chest X-ray data the tests run on.

- ``chest28_path``: the 28 px NIH1000 sample shipped inside the package (``sample="nih1000"``), so the
  suite runs on a fresh clone with nothing beside it.
- ``torch_disk_full``: ``atomic_torch_save`` writes to a disk that fills up after a few hundred bytes.
- ``chest64_path``, ``pneumonia_path``: the larger real files in ``../shared/data`` (or
  ``$MEDGAN_AUG_DATA``). Tests that need them run when they are present. When they are missing the tests
  are skipped with the reason on a user's machine, and FAIL under ``CI=true`` (CI always has
  ``../shared/data``, so a skip there would hide a broken set-up).
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest
import torch

from medgan_aug.data import sample_path

# Two torch threads per process on a 2-core machine shared with other processes thrash (docs/performance.md,
# "Threads"); tests are small, so one thread is the fast choice.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("MEDGAN_AUG_DATA", REPO.parent / "shared" / "data"))


def in_ci() -> bool:
    """True under CI (``CI=true``, as CI services and our ``.ci/run`` set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def shared_file(name: str) -> Path:
    """A real file from the shared data folder: fail under CI when missing, skip elsewhere."""
    path = DATA_DIR / name
    if not path.is_file():
        message = (
            f"real data file {path} is missing: these tests need ../shared/data beside the repository "
            f"(or MEDGAN_AUG_DATA pointing at a folder with {name})"
        )
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def chest28_path() -> Path:
    return sample_path("nih1000")


@pytest.fixture(scope="session")
def chest28_shared_path() -> Path:
    """The shared copy of the 28 px NIH1000 file (the packaged sample must equal it)."""
    return shared_file("nih1000_chestmnist.npz")


@pytest.fixture(scope="session")
def chest64_path() -> Path:
    return shared_file("nih1000_chestmnist_64.npz")


@pytest.fixture(scope="session")
def pneumonia_path() -> Path:
    return shared_file("pneumoniamnist_union.npz")


# A process that takes a lock with medgan_aug.utils.locks.work_lock, says so, then sleeps (or exits after
# argv[2] seconds, releasing it).
_LOCK_HOLDER = """
import sys, time
from medgan_aug.utils.locks import work_lock
with work_lock(sys.argv[1], wait=False) as held:
    print("held" if held else "busy", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def lock_holder():
    """Start another process holding a lock: ``lock_holder(path, seconds=600)`` returns its ``Popen`` once
    it holds the lock. Processes still running at the end of the test are killed."""
    import subprocess
    import sys

    started: list[subprocess.Popen] = []

    def start(path: Path, seconds: float = 600) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        holder = subprocess.Popen(
            [sys.executable, "-c", _LOCK_HOLDER, str(path), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        started.append(holder)
        assert holder.stdout.readline().strip() == "held"
        return holder

    yield start
    for holder in started:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        holder.stdout.close()


class DiskWithRoomFor(io.FileIO):
    """A file on a disk that fills up after ``room`` bytes: later writes fail as write(2) does (ENOSPC, no
    file name)."""

    room = 300

    def write(self, data) -> int:
        if self.tell() + memoryview(data).nbytes > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


@pytest.fixture
def torch_disk_full(monkeypatch):
    """``atomic_torch_save`` writes its temporary file on a disk with room for 300 bytes."""
    monkeypatch.setattr("medgan_aug.utils.serialization.open", DiskWithRoomFor, raising=False)
