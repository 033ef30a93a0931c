"""The evaluation engine gives exactly the errors of a naive per-configuration loop, on the whole split."""

import torch
import torch.nn.functional as F

from toroids import geometry
from toroids.evaluate import evaluate, evaluate_many, recompute_bn_stats
from toroids.models import build_model


def _naive(model, state, x, y):
    m = build_model(
        **{k: model.spec[k] for k in ("arch", "input_shape", "n_classes")}, **model.spec["options"]
    )
    m.load_state_dict(state)
    m.eval()
    with torch.no_grad():
        out = torch.cat([m(xb) for xb in x.split(7)])  # small batches: the peer-style loop
    return int((out.argmax(1) != y).sum()) / len(y), float(F.cross_entropy(out, y))


def test_engine_equals_naive_loop_on_a_path(blobs):
    a = build_model("mlp", (10,), 4, seed=0, widths=[16])
    b = build_model("mlp", (10,), 4, seed=1, widths=[16])
    states = geometry.linear_path(a.state_dict(), b.state_dict(), [0.0, 0.3, 0.7, 1.0])
    got = evaluate_many(a, states, {"train": (blobs.x_train, blobs.y_train)}, chunk_size=50)
    for state, scores in zip(states, got):
        err, loss = _naive(a, state, blobs.x_train, blobs.y_train)
        assert scores["train"].error == err
        assert abs(scores["train"].loss - loss) < 1e-5


def test_evaluation_covers_the_whole_split(blobs):
    """An error planted in the last chunk counts (a loop that stops after its first batch would miss it)."""
    m = build_model("mlp", (10,), 4, seed=0, widths=[16]).eval()
    with torch.no_grad():
        pred = m(blobs.x_train).argmax(1)
    y = pred.clone()
    y[-1] = (y[-1] + 1) % 4
    assert evaluate(m, blobs.x_train, y, chunk_size=32).error == 1 / len(y)


def test_recompute_bn_stats_matches_the_full_train_statistics():
    torch.manual_seed(0)
    m = build_model("vgg16_bn", (3, 4, 4), 3, seed=0, width=1 / 16)
    x = torch.randn(64, 3, 4, 4) * 3 + 1
    state = recompute_bn_stats(m, m.state_dict(), x, chunk_size=64)
    # the first BN sees the first conv's output on all of x: its running mean is that batch mean
    with torch.no_grad():
        h = m[0](x)
    torch.testing.assert_close(state["1.running_mean"], h.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
    assert m[1].momentum == 0.1  # the module is restored
