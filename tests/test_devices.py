"""Devices: the ``device`` setting, and the GPU slot allocator (with fake GPU counts: no GPU needed)."""

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from toroids import devices
from toroids.devices import acquire_slot, resolve_device

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"

# A job that takes a slot among N, prints it, and holds it until its stdin closes.
HOLDER = """
import sys
from toroids.devices import acquire_slot
print(acquire_slot(int(sys.argv[1]), sys.argv[2], poll_s=0.05), flush=True)
sys.stdin.read()
"""


@pytest.fixture(autouse=True)
def no_held_slot(monkeypatch):
    monkeypatch.setattr(devices, "_held", None)


def test_cpu_and_auto_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_without_gpu_names_the_config_key(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="config key 'device' is 'cuda'"):
        resolve_device("cuda")


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="config key 'device' is 'gpu'"):
        resolve_device("gpu")


def test_cuda_takes_a_free_gpu_unless_the_scheduler_chose(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setenv("TOROIDS_GPU_LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert not list(tmp_path.iterdir())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with holders(2, tmp_path, 3) as held:
        assert sorted(held) == [0, 1]
        assert resolve_device("cuda") == torch.device("cuda", 2)
    assert resolve_device("cuda") == torch.device("cuda", 2)  # a process keeps its slot


class holders:
    """``count`` subprocesses that each hold a slot among ``n``; their slots, in start order."""

    def __init__(self, count, lock_dir, n):
        self.procs = [start(lock_dir, n) for _ in range(count)]

    def __enter__(self):
        return [int(p.stdout.readline()) for p in self.procs]

    def __exit__(self, *exc):
        for p in self.procs:
            stop(p)


def start(lock_dir, n):
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(n), str(lock_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def stop(p):
    if p.poll() is None:
        p.stdin.close()
        p.wait(timeout=30)


def test_each_process_gets_its_own_slot_and_a_third_waits(tmp_path):
    a, b = start(tmp_path, 2), start(tmp_path, 2)
    try:
        assert {int(a.stdout.readline()), int(b.stdout.readline())} == {0, 1}
        c = start(tmp_path, 2)
        try:
            assert "waiting" in c.stderr.readline()
            assert not select.select([c.stdout], [], [], 0.5)[0]  # still waiting: no slot printed
            stop(a)
            slot = c.stdout.readline()  # blocks until c got a slot
            assert int(slot) in {0, 1}
        finally:
            stop(c)
    finally:
        stop(a)
        stop(b)


def test_a_killed_holder_frees_its_slot(tmp_path):
    a = start(tmp_path, 1)
    try:
        assert int(a.stdout.readline()) == 0
        b = start(tmp_path, 1)
        try:
            assert "waiting" in b.stderr.readline()
            os.kill(a.pid, signal.SIGKILL)
            a.wait(timeout=30)
            assert int(b.stdout.readline()) == 0
        finally:
            stop(b)
    finally:
        stop(a)


def test_lock_dir_is_created_shared(tmp_path):
    folder = tmp_path / "locks"
    assert acquire_slot(1, folder, poll_s=0.01) == 0
    assert folder.stat().st_mode & 0o7777 == 0o1777
    assert (folder / "gpu0.lock").exists()
    with pytest.raises(ValueError, match="n_devices"):
        devices._held = None
        acquire_slot(0, folder)
