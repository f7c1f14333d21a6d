"""Training: resume is bit-identical, a non-finite loss stops the run, settings are validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sfbench.train as train_mod
from sfbench.data import get_dataset
from sfbench.errors import NonFiniteLossError
from sfbench.train import TrainConfig, lr_factor, train

SMALL_NET = {"kind": "mlp", "dim": 2, "width": 32, "depth": 2, "activation": "silu",
             "time_embed_dim": 16}


def small_config(**kw) -> TrainConfig:
    base = dict(method="rectified_flow", steps=60, batch_size=64, checkpoint_every=20,
                log_every=10, warmup_steps=5, network=SMALL_NET)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def data():
    return get_dataset("8gaussians").sample(2000, seed=0)


def interrupted_then_resumed(cfg, data, ckpt_dir, monkeypatch, stop_at_call, **train_kwargs):
    """Train until the loss is asked for the ``stop_at_call``-th time, as a killed
    job would stop, then rerun the same job; returns the resumed result."""
    calls = {"n": 0}
    real_loss = train_mod.training_loss

    def interrupted_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == stop_at_call:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_mod, "training_loss", interrupted_loss)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, data, checkpoint_dir=ckpt_dir, progress=False, **train_kwargs)
    monkeypatch.setattr(train_mod, "training_loss", real_loss)
    return train(cfg, data, checkpoint_dir=ckpt_dir, progress=False, **train_kwargs)


def assert_same_weights(a, b):
    sa, sb = a.model.net.state_dict(), b.model.net.state_dict()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


@pytest.mark.parametrize("method", ["ddpm", "dsm", "rectified_flow"])
def test_resume_after_interruption_is_bit_identical(method, data, tmp_path, monkeypatch):
    cfg = small_config(method=method)
    reference = train(cfg, data, checkpoint_dir=tmp_path / "a", progress=False)
    # Interrupted after its step-40 checkpoint.
    resumed = interrupted_then_resumed(cfg, data, tmp_path / "b", monkeypatch, stop_at_call=45)
    assert resumed.resumed_from_step == 40
    assert_same_weights(reference, resumed)
    assert resumed.loss_history == reference.loss_history


def test_different_seed_gives_different_weights(data):
    a = train(small_config(steps=5), data, progress=False).model.net.state_dict()
    b = train(small_config(steps=5, seed=1), data, progress=False).model.net.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_of_other_settings_is_refused(data, tmp_path):
    train(small_config(steps=20), data, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="different settings"):
        train(small_config(steps=40, lr=1e-4), data, checkpoint_dir=tmp_path, progress=False)


def test_non_finite_loss_stops_training(tmp_path):
    # float32 overflows on squares of 1e30: the first loss is infinite.
    bad = torch.full((100, 2), 1e30).numpy()
    with pytest.raises(NonFiniteLossError, match="step 1"):
        train(small_config(), bad, checkpoint_dir=tmp_path, progress=False)
    assert not (tmp_path / "last.pt").exists()


def test_paired_training_resumes_bit_identically_and_uses_the_pairs(data, tmp_path, monkeypatch):
    noise = torch.randn(data.shape[0], 2, generator=torch.Generator().manual_seed(1))
    cfg = small_config(method="reflow")
    reference = train(cfg, data, checkpoint_dir=tmp_path / "a", progress=False, noise=noise)
    resumed = interrupted_then_resumed(cfg, data, tmp_path / "b", monkeypatch, stop_at_call=45,
                                       noise=noise)
    assert resumed.resumed_from_step == 40
    assert_same_weights(reference, resumed)
    # Same noise rows, paired with other data rows: other batches, other weights.
    other = train(cfg, data, progress=False, noise=noise.flip(0))
    first = [next(iter(r.model.net.parameters())) for r in (reference, other)]
    assert not torch.equal(*first)


def test_paired_noise_is_checked(data):
    cfg = small_config(method="reflow")
    with pytest.raises(ValueError, match="noise rows"):
        train(cfg, data, progress=False, noise=torch.zeros(10, 2))
    with pytest.raises(ValueError, match="paired noise holds NaN"):
        train(cfg, data, progress=False, noise=torch.full(data.shape, float("nan")))
    with pytest.raises(ValueError, match="pass noise"):
        train(cfg, data, progress=False)
    with pytest.raises(ValueError, match="only for paired methods"):
        train(small_config(), data, progress=False, noise=torch.zeros(data.shape))


def test_nan_data_is_refused():
    bad = torch.zeros(10, 2)
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        train(small_config(), bad.numpy(), progress=False)


@pytest.mark.parametrize(
    "field, value", [("steps", 0), ("batch_size", -1), ("lr", 0.0), ("ema_decay", 1.0),
                     ("lr_decay", "linear"), ("precision", "fp8")]
)
def test_invalid_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        small_config(**{field: value})


def test_unknown_setting_is_named():
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 1e-3})


def test_learning_rate_warms_up_then_decays():
    cfg = small_config(steps=100, warmup_steps=10)
    factors = [lr_factor(s, cfg) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:], strict=False))
    assert factors[-1] == pytest.approx(0.1, abs=0.01)


# ---------------------------------------------------------------- images

TINY_UNET = {"kind": "unet", "shape": [1, 8, 8], "base_channels": 8, "channel_mult": [1, 2],
             "num_res_blocks": 1, "attention": True}


@pytest.fixture(scope="module")
def digits():
    return get_dataset("digits").load_split("train")


def test_unet_on_images_resumes_bit_identically(digits, tmp_path, monkeypatch):
    cfg = small_config(method="ddpm", steps=12, batch_size=16, checkpoint_every=4,
                       network=TINY_UNET)
    reference = train(cfg, digits, checkpoint_dir=tmp_path / "a", progress=False)
    resumed = interrupted_then_resumed(cfg, digits, tmp_path / "b", monkeypatch, stop_at_call=10)
    assert resumed.resumed_from_step == 8
    assert_same_weights(reference, resumed)
    x = torch.as_tensor(digits[:3])
    assert reference.model.predict(x, 0.5).eps.shape == (3, 1, 8, 8)


def test_image_data_of_the_wrong_shape_is_refused(digits):
    with pytest.raises(ValueError, match=r"shape \[1497, 64\].*\[N, 1, 8, 8\]"):
        train(small_config(network=TINY_UNET), digits.reshape(1497, 64), progress=False)
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        train(small_config(), digits, progress=False)


def test_train_command_on_digits_uses_the_unet(tmp_path):
    import json

    import yaml

    from sfbench.checkpoint import load_model
    from sfbench.cli import main

    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(
        {"network": {"base_channels": 8}, "warmup_steps": 1, "checkpoint_every": 5}))
    assert main(["data", "--dataset", "digits", "--out", str(tmp_path / "d.npz"),
                 "--result", str(tmp_path / "d.json")]) == 0
    data_rec = json.loads((tmp_path / "d.json").read_text())["settings"]
    assert data_rec["n_train"] == 1497 and data_rec["n_test"] == 300 and data_rec["levels"] == 17
    assert main(["train", "--method", "rectified_flow", "--dataset", "digits", "--data",
                 str(tmp_path / "d.npz"), "--config", str(tmp_path / "cfg.yaml"), "--steps", "5",
                 "--batch-size", "8", "--out", str(tmp_path / "m.pt"),
                 "--result", str(tmp_path / "t.json")]) == 0
    settings = json.loads((tmp_path / "t.json").read_text())["settings"]
    assert settings["network"]["kind"] == "unet" and settings["network"]["base_channels"] == 8
    assert settings["network"]["shape"] == [1, 8, 8] and settings["n_train"] == 1497
    model = load_model(tmp_path / "m.pt")
    assert model.net.dim == 64 and model.predict(torch.zeros(2, 64), 0.5).velocity.shape == (2, 64)


def test_finished_checkpoint_is_not_resumed(data, tmp_path):
    """A forced rerun of a finished job retrains instead of returning the stored weights."""
    cfg = small_config(steps=20)
    first = train(cfg, data, checkpoint_dir=tmp_path, progress=False)
    again = train(cfg, data, checkpoint_dir=tmp_path, progress=False)
    assert again.resumed_from_step == 0 and again.wall_seconds > 0
    assert again.loss_history == first.loss_history  # same seed, same run


def test_a_setting_of_the_wrong_type_is_refused_with_its_name():
    # YAML reads `lr: 1e-3` (no dot) as the string "1e-3".
    with pytest.raises(ValueError, match=r"lr must be of type float.*1\.0e-3"):
        TrainConfig(lr="1e-3")
    with pytest.raises(ValueError, match="steps must be of type int"):
        TrainConfig(steps=10.5)
    with pytest.raises(ValueError, match="compile must be of type bool"):
        TrainConfig(compile="yes")


@pytest.mark.slow  # torch.compile builds C++ kernels on the CPU: ~20 s
def test_compiled_and_eager_training_share_the_saved_weights(tmp_path):
    """`compile` wraps only the network the loss calls: checkpoints keep plain names."""
    data = np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32)
    results = {}
    for flag in (False, True):
        cfg = TrainConfig(steps=3, batch_size=32, checkpoint_every=3, compile=flag)
        results[flag] = train(cfg, data, checkpoint_dir=tmp_path / str(flag), progress=False)
        saved = torch.load(tmp_path / str(flag) / "last.pt", weights_only=False)["net"]
        assert not any(k.startswith("_orig_mod") for k in saved)
    eager, compiled = (results[f].model.net.state_dict() for f in (False, True))
    assert eager.keys() == compiled.keys()
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-4, atol=1e-5)
