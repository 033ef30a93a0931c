"""Hessian trace: Hutchinson agrees with the exact trace, closed forms, chunk invariance, modes, caveats, and
its memory budget (the same trace, a peak within the budget)."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from toroids import sharpness
from toroids.models import build_model
from toroids.sharpness import (
    MEASURED_MARGIN,
    MIB,
    activation_bytes,
    budget_chunk,
    exact_hessian_trace,
    hessian_trace,
    hvp,
    hvp_memory,
)

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def _tiny(seed: int = 0):
    """MLP 3-4-2 (26 parameters) in float64 with a non-trivial Hessian, and 40 samples."""
    g = torch.Generator().manual_seed(seed)
    m = build_model("mlp", (3,), 2, seed=seed, widths=[4]).double()
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (40,), generator=g)
    return m, x, y


def test_hutchinson_matches_exact_trace_within_3_stderr():
    m, x, y = _tiny()
    assert sum(p.numel() for p in m.parameters()) == 26
    exact = exact_hessian_trace(m, x, y)
    est = hessian_trace(m, x, y, n_probes=2000, seed=0, chunk_size=64, probe_batch=2000)
    assert est["n_probes"] == 2000 and est["stderr"] > 0
    assert abs(est["trace"] - exact) < 3 * est["stderr"]


def test_exact_trace_matches_the_sum_of_hvp_diagonal():
    """Cross-check the exact trace against Σ_j e_jᵀ H e_j computed with HVPs, entry by entry."""
    m, x, y = _tiny(1)
    state = {k: v for k, v in m.named_parameters()}
    total = 0.0
    for k, t in state.items():
        for j in range(t.numel()):
            e = {kk: torch.zeros_like(tt) for kk, tt in state.items()}
            e[k].view(-1)[j] = 1.0
            total += float((hvp(m, x, y, e)[k] * e[k]).sum())
    assert total == pytest.approx(exact_hessian_trace(m, x, y), rel=1e-10)


def test_linear_softmax_closed_form():
    """f = Wx, K classes: H = (1/N) Σ_n (diag p_n − p_n p_nᵀ) ⊗ x_n x_nᵀ, so tr H = (1/N) Σ_n Σ_k
    p_nk (1 − p_nk) ‖x_n‖²."""
    g = torch.Generator().manual_seed(2)
    model = nn.Sequential(nn.Linear(5, 3, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(3, 5, generator=g, dtype=torch.float64))
    x = torch.randn(30, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (30,), generator=g)
    with torch.no_grad():
        p = torch.softmax(model(x), 1)
    expected = float(((p * (1 - p)).sum(1) * (x**2).sum(1)).mean())
    assert exact_hessian_trace(model, x, y) == pytest.approx(expected, rel=1e-12)


def test_diagonal_hessian_is_estimated_exactly():
    """One logit, BCE, inputs a_n e_{k(n)} (one non-zero feature each): H is diagonal with
    H_kk = (1/N) Σ_{n: k(n)=k} σ(z_n)(1 − σ(z_n)) a_n², and vᵀHv = tr H for every Rademacher v."""
    g = torch.Generator().manual_seed(3)
    n, d = 24, 6
    k = torch.arange(n) % d
    a = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    x = torch.zeros(n, d, dtype=torch.float64)
    x[torch.arange(n), k] = a
    y = torch.randint(0, 2, (n,), generator=g)
    model = nn.Sequential(nn.Linear(d, 1, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(1, d, generator=g, dtype=torch.float64))
    with torch.no_grad():
        z = model(x)[:, 0]
    s = torch.sigmoid(z)
    expected = float((s * (1 - s) * a**2).sum() / n)
    est = hessian_trace(model, x, y, n_probes=5, seed=0, chunk_size=7, probe_batch=2)
    assert est["trace"] == pytest.approx(expected, rel=1e-12)
    assert est["stderr"] == pytest.approx(0.0, abs=1e-14)
    assert exact_hessian_trace(model, x, y) == pytest.approx(expected, rel=1e-12)


def test_chunked_equals_unchunked_and_modes_agree():
    m, x, y = _tiny(4)
    full = hessian_trace(m, x, y, n_probes=20, seed=5, chunk_size=10_000)
    for chunk, batch in ((1, 20), (7, 3), (16, 1), (40, 8)):
        part = hessian_trace(m, x, y, n_probes=20, seed=5, chunk_size=chunk, probe_batch=batch)
        assert part["trace"] == pytest.approx(full["trace"], rel=1e-10)
        assert part["stderr"] == pytest.approx(full["stderr"], rel=1e-8)
    rev = hessian_trace(m, x, y, n_probes=20, seed=5, mode="reverse")
    assert rev["trace"] == pytest.approx(full["trace"], rel=1e-10)


def test_seeded_and_eval_mode_with_batchnorm():
    """Same seed, same number; BN in eval mode (running stats untouched, train flag restored)."""
    m = build_model("vgg16_bn", (3, 4, 4), 3, seed=0, width=1 / 16)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 3, 4, 4, generator=g), torch.randint(0, 3, (12,), generator=g)
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    r1 = hessian_trace(m, x, y, n_probes=3, seed=1, chunk_size=5)
    r2 = hessian_trace(m, x, y, n_probes=3, seed=1, chunk_size=12, probe_batch=3)
    assert r1["trace"] == pytest.approx(r2["trace"], rel=1e-4)
    assert m.training
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    weights_only = hessian_trace(m, x, y, n_probes=3, seed=1, params="weights")
    assert weights_only["trace"] != r1["trace"]


def test_not_rescaling_invariant_unless_normalized():
    """Per-unit rescaling keeps the function but changes tr H; the normalized trace is unchanged."""
    m, x, y = _tiny(5)
    scaled = build_model("mlp", (3,), 2, widths=[4]).double()
    scaled.load_state_dict(m.state_dict())
    a = torch.tensor([0.3, 2.0, 1.0, 4.0], dtype=torch.float64)
    with torch.no_grad():
        scaled[1].weight.mul_(a[:, None])
        scaled[1].bias.mul_(a)
        scaled[3].weight.div_(a[None, :])
    assert torch.allclose(m(x), scaled(x))
    t1, t2 = exact_hessian_trace(m, x, y), exact_hessian_trace(scaled, x, y)
    assert abs(t1 - t2) > 1e-3 * abs(t1)
    n1 = hessian_trace(m, x, y, n_probes=10, seed=0, normalized=True, probe_batch=10)
    n2 = hessian_trace(scaled, x, y, n_probes=10, seed=0, normalized=True, probe_batch=10)
    assert n1["trace"] == pytest.approx(n2["trace"], rel=1e-9)


def test_bad_arguments():
    m, x, y = _tiny()
    with pytest.raises(ValueError, match="n_probes"):
        hessian_trace(m, x, y, n_probes=0, seed=0)
    with pytest.raises(ValueError, match="mode"):
        hessian_trace(m, x, y, n_probes=1, seed=0, mode="sideways")
    with pytest.raises(ValueError, match="probe_batch"):
        hessian_trace(m, x, y, n_probes=1, seed=0, probe_batch=0)


# ---- the memory budget (sharpness.memory_mb) ----


def _wide(n: int = 300):
    """MLP 64-256-256-3 in float64 (≈ 0.6 MB of weights, 9 kB of activations a sample) and n samples."""
    g = torch.Generator().manual_seed(6)
    m = build_model("mlp", (64,), 3, seed=6, widths=[256, 256]).double()
    return m, torch.randn(n, 64, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def test_activation_bytes_are_the_input_and_every_layer_output():
    m, x, _ = _tiny()  # Flatten (a view, counted), Linear 3→4, ReLU, Linear 4→2; float64
    assert activation_bytes(m, x) == 8 * (3 + 3 + 4 + 4 + 2)
    assert m.training  # the eval-mode pass restores the mode


def test_the_estimate_is_the_documented_formula():
    m, x, y = _wide()
    a = activation_bytes(m, x)
    weights = 8 * sum(p.numel() for p in m.parameters())
    for b in (1, 4):
        mem = hvp_memory(m, x, y, probe_batch=b)
        assert (mem.fixed, mem.per_sample) == ((2 + 8 * b) * weights, (4 + 2 * b) * a)
        assert mem.bytes(mem.chunk(50 * MIB)) <= 50 * MIB < mem.bytes(mem.chunk(50 * MIB) + 1)
    assert hvp_memory(m, x, y, mode="reverse", probe_batch=4) == hvp_memory(m, x, y, probe_batch=1)


def test_the_trace_does_not_change_with_the_budget():
    m, x, y = _wide()
    free = hessian_trace(m, x, y, n_probes=4, seed=2, chunk_size=len(y), probe_batch=2)
    for memory_mb in (8, 16, 10**6):
        logs: list[str] = []
        bounded = hessian_trace(
            m,
            x,
            y,
            n_probes=4,
            seed=2,
            chunk_size=len(y),
            probe_batch=2,
            memory_mb=memory_mb,
            log=logs.append,
        )
        assert bounded["trace"] == pytest.approx(free["trace"], rel=1e-6)
        assert bounded["stderr"] == pytest.approx(free["stderr"], rel=1e-6)
        chunk = int(re.search(r"chunk (\d+)", logs[0])[1])
        assert (chunk < len(y)) == (memory_mb < 10**6)  # the small budgets did cut the chunk


def test_the_budget_chunk_is_the_smaller_of_chunk_size_and_what_fits():
    m, x, y = _wide()
    mem = hvp_memory(m, x, y)
    assert budget_chunk(m, x, y, 10**6, chunk_size=7) == (7, 1)
    assert budget_chunk(m, x, y, 10**6, chunk_size=10**6) == (len(y), 1)
    assert budget_chunk(m, x, y, 12, chunk_size=10**6) == (mem.chunk(12 * MIB), 1)
    with pytest.raises(ValueError, match="memory_mb"):
        budget_chunk(m, x, y, 0, chunk_size=7)


def test_fewer_probes_per_pass_when_not_one_sample_fits():
    """(2 + 8b)·P: at 0.6 MB of weights 20 MB holds b = 2 probes per pass, not 8; 1 MB not even one."""
    m, x, y = _wide()
    logs: list[str] = []
    chunk, b = budget_chunk(m, x, y, 20, chunk_size=len(y), probe_batch=8, log=logs.append)
    assert b == 2 and chunk >= 1 and "(not 8)" in logs[0]
    assert budget_chunk(m, x, y, 1, chunk_size=len(y), probe_batch=8, log=logs.append) == (1, 1)
    assert "over the budget" in logs[1]


def test_measured_memory_is_the_line_through_two_trial_passes(monkeypatch):
    """(The CUDA path without a GPU: the trial passes' peaks replaced by a known line 1000 + 300 c.)"""
    seen = []

    def trial(model, x, y, chunk, params, mode, probe_batch):
        seen.append(chunk)
        return 1000 + 300 * chunk

    monkeypatch.setattr(sharpness, "_trial_peak", trial)
    m, x, y = _tiny()
    mem = sharpness._measured(m, x, y, "all", "forward", 1)
    assert seen == [sharpness.TRIAL_CHUNK, 2 * sharpness.TRIAL_CHUNK]
    assert mem.fixed == pytest.approx(1000 * MEASURED_MARGIN)
    assert mem.per_sample == pytest.approx(300 * MEASURED_MARGIN)
    assert sharpness._measured(m, x[:1], y[:1], "all", "forward", 1).per_sample == 1300 * MEASURED_MARGIN


#: the peak RSS (MiB) above the baseline of one Hessian trace of a conv net whose activations dominate
#: (0.74 MB a sample, 0.13 MB of weights): 1500 samples in one chunk (≈ 0.7 GB), or within argv[1] MiB
_RSS_PROBE = textwrap.dedent(
    """
    import json, sys
    import torch
    from torch import nn
    from toroids.sharpness import hessian_trace

    def peak_mib():
        # VmHWM, this process's own peak RSS: getrusage's ru_maxrss survives execve and would start at the
        # peak of the (large) pytest process that forked this one
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(16 * 14 * 14, 10))
    x, y = torch.randn(1500, 1, 28, 28), torch.randint(0, 10, (1500,))
    # torch.func loads ~170 MB of code on its first call, and the first convolution sets up its kernels:
    # a one-time cost of the process, not of the activations, so it is in the baseline
    hessian_trace(nn.Linear(3, 2), torch.randn(4, 3), torch.randint(0, 2, (4,)), n_probes=1, seed=0)
    with torch.no_grad():
        net(x[:2])
    base, logs = peak_mib(), []
    budget = int(sys.argv[1]) if len(sys.argv) > 1 else None
    res = hessian_trace(net, x, y, n_probes=1, seed=0, chunk_size=len(y), memory_mb=budget, log=logs.append)
    print(json.dumps({"peak_mib": peak_mib() - base, "trace": res["trace"], "log": logs}))
    """
)


def _rss_probe(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS), "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_the_peak_rss_stays_within_the_budget():
    """Each run in its own process (the peak RSS never comes down); slack: 16 MiB for the allocator's
    arenas and page granularity. The unbounded run must exceed the budget many times over, or the test
    could not fail."""
    budget, slack = 64, 16
    bounded, free = _rss_probe(str(budget)), _rss_probe()
    assert bounded["peak_mib"] <= budget + slack, bounded
    assert free["peak_mib"] > 4 * (budget + slack), free
    assert bounded["trace"] == pytest.approx(free["trace"], rel=1e-4)  # float32, other chunk sums
    assert int(re.search(r"chunk (\d+)", bounded["log"][0])[1]) < 1500 and not free["log"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_cuda_peak_stays_within_the_budget(monkeypatch):
    """torch.cuda.max_memory_allocated above what was allocated before the call (the trial passes reset
    the peak statistics before the real ones run, which are the larger); a few GB unbounded. Slack: 16 MiB.
    TF32 off, so that the two chunkings agree to rounding."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    torch.manual_seed(0)
    dev = torch.device("cuda")
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * 16 * 16, 10),
    ).to(dev)  # fmt: skip
    x, y = torch.randn(2000, 3, 32, 32, device=dev), torch.randint(0, 10, (2000,), device=dev)

    def peak(memory_mb):
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        res = hessian_trace(
            net, x, y, n_probes=2, seed=0, chunk_size=len(y), probe_batch=2, memory_mb=memory_mb
        )
        torch.cuda.synchronize(dev)
        return res["trace"], (torch.cuda.max_memory_allocated(dev) - base) / MIB

    budget, slack = 256, 16
    trace_free, free = peak(None)
    trace_bounded, bounded = peak(budget)
    assert bounded <= budget + slack
    assert free > 4 * (budget + slack)
    assert trace_bounded == pytest.approx(trace_free, rel=1e-4)
