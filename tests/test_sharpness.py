"""Hessian trace: Hutchinson agrees with the exact trace, closed forms, chunk invariance, modes, caveats."""

import pytest
import torch
from torch import nn

from toroids.models import build_model
from toroids.sharpness import exact_hessian_trace, hessian_trace, hvp


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
