"""Training: reaches a solution, resumes bitwise-identically from its epoch checkpoint, reports divergence."""

import pytest
import torch

from toroids.checkpoint import CheckpointError, load_model, load_state, save_model
from toroids.samplers import TrainingDiverged
from toroids.train import train

KW = dict(
    arch="mlp",
    model_options={"widths": [16]},
    sampler="sgd",
    sampler_options={"lr": 0.05},
    batch_size=32,
    seed=4,
    device=torch.device("cpu"),
)


class Stop(Exception):
    pass


def test_sgd_fits_a_separable_problem(blobs):
    res = train(data=blobs, epochs=20, log=lambda m: None, **KW)
    assert res.train_error < 0.01
    assert len(res.history) == 20 and res.history[-1]["epoch"] == 20


def test_resume_is_bitwise_identical(blobs, tmp_path):
    ref = train(data=blobs, epochs=6, log=lambda m: None, **KW).model.state_dict()

    def crash_at_epoch_4(msg):
        if msg.startswith("epoch    4/"):
            raise Stop

    ckpt = tmp_path / "ckpt.safetensors"
    with pytest.raises(Stop):
        train(data=blobs, epochs=6, checkpoint=ckpt, checkpoint_every_s=0, log=crash_at_epoch_4, **KW)
    assert load_state(ckpt)[1]["epoch"] == 2  # epochs 1..3 done
    lines = []
    res = train(data=blobs, epochs=6, checkpoint=ckpt, checkpoint_every_s=0, log=lines.append, **KW)
    assert res.resumed_from_epoch == 2 and any("resumed" in line for line in lines)
    assert len(res.history) == 6
    for k, v in ref.items():
        assert torch.equal(v, res.model.state_dict()[k]), k


def test_epoch_checkpoint_is_written_at_most_every_interval_and_after_the_last_epoch(blobs, tmp_path):
    from unittest import mock

    from toroids import train as train_module

    ckpt = tmp_path / "ckpt.safetensors"
    calls = []
    real = train_module.save_state

    def spy(path, state, meta):
        calls.append(meta["epoch"])
        real(path, state, meta)

    with mock.patch.object(train_module, "save_state", spy):
        train(data=blobs, epochs=6, checkpoint=ckpt, checkpoint_every_s=3600, log=lambda m: None, **KW)
        assert calls == [5]  # only after the last epoch
        calls.clear()
        ckpt.unlink()
        train(data=blobs, epochs=6, checkpoint=ckpt, checkpoint_every_s=0, log=lambda m: None, **KW)
        assert calls == [0, 1, 2, 3, 4, 5]


def test_divergence_is_reported(blobs):
    with pytest.raises(TrainingDiverged, match="diverged at epoch"):
        train(data=blobs, epochs=3, log=lambda m: None, **{**KW, "sampler_options": {"lr": 1e6}})


def test_checkpoint_roundtrip_and_refusals(blobs, tmp_path):
    model = train(data=blobs, epochs=1, log=lambda m: None, **KW).model
    path = tmp_path / "m.safetensors"
    save_model(path, model)
    again = load_model(path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(CheckpointError, match="t.safetensors"):
        load_model(truncated)
    pickled = tmp_path / "p.safetensors"
    torch.save(model.state_dict(), pickled)
    with pytest.raises(CheckpointError, match="pickle"):
        load_model(pickled)
