"""The local energy: exactly zero at σ = 0, invariant to per-unit rescaling, growing with σ."""

import torch

from toroids.flatness import local_energy, perturbed_keys
from toroids.models import build_model
from toroids.train import train


def _trained(blobs):
    res = train(
        arch="mlp",
        model_options={"widths": [16]},
        data=blobs,
        sampler="sgd",
        sampler_options={"lr": 0.05},
        epochs=15,
        batch_size=32,
        seed=0,
        device=torch.device("cpu"),
        log=lambda m: None,
    )
    return res.model


def test_zero_at_sigma_zero_and_positive_later(blobs):
    m = _trained(blobs)
    rows = local_energy(m, blobs.x_train, blobs.y_train, [0.0, 0.5, 2.0], n_samples=10, seed=0)
    assert rows[0]["delta_mean"] == 0.0 and rows[0]["delta_std"] == 0.0
    assert rows[2]["delta_mean"] > 0.05
    assert rows[0]["train_error"] < 0.05


def test_invariant_to_per_unit_rescaling(blobs):
    m = _trained(blobs)
    scaled = build_model("mlp", (10,), 4, widths=[16])
    scaled.load_state_dict(m.state_dict())
    a = torch.linspace(0.2, 5.0, 16)
    with torch.no_grad():  # unit k: incoming weights and bias × a_k, outgoing column × 1/a_k
        scaled[1].weight.mul_(a[:, None])
        scaled[1].bias.mul_(a)
        scaled[3].weight.div_(a[None, :])
    sig = [0.0, 0.3, 0.6]
    r1 = local_energy(m, blobs.x_train, blobs.y_train, sig, n_samples=8, seed=3)
    r2 = local_energy(scaled, blobs.x_train, blobs.y_train, sig, n_samples=8, seed=3)
    assert [r["delta_mean"] for r in r1] == [r["delta_mean"] for r in r2]


def test_perturbed_keys():
    m = build_model("vgg16_bn", (3, 4, 4), 3, width=1 / 16)
    keys_all, keys_w = perturbed_keys(m, "all"), perturbed_keys(m, "weights")
    assert "1.weight" in keys_all and "1.weight" not in keys_w  # BN γ
    assert "0.weight" in keys_w and "0.bias" not in keys_w
    assert not any("running" in k for k in keys_all)
