"""The time embedding scale: chosen per time axis, kept in the model file, 1000 when absent."""

import math

import pytest
import torch

from sfbench.checkpoint import load_model, save_model
from sfbench.models import MLP, SinusoidalEmbedding, UNet
from sfbench.models.presets import CONTINUOUS_TIME_EMBED_SCALE, time_embed_scale
from sfbench.models.registry import build_network
from sfbench.train import TrainConfig, train

NET = {"kind": "mlp", "dim": 2, "width": 16, "depth": 1, "activation": "silu",
       "time_embed_dim": 8}


@pytest.mark.parametrize("method", ["dsm", "probability_flow", "cfm", "ot_cfm",
                                    "rectified_flow", "reflow", "distill"])
def test_continuous_time_methods_get_the_continuous_scale(method):
    assert time_embed_scale(method) == CONTINUOUS_TIME_EMBED_SCALE == 30.0


def test_ddpm_gets_its_number_of_steps_so_the_features_see_the_step_index():
    assert time_embed_scale("ddpm") == 1000.0
    assert time_embed_scale("ddpm", {"num_steps": 250}) == 250.0


def test_the_embedding_of_step_k_is_the_transformer_embedding_of_k():
    # DDPM's t = 1 - k/T is fed as t; with scale T the argument of the features is
    # T t = T - k: on the lattice the features are those of a whole step count.
    emb = SinusoidalEmbedding(4, scale=1000.0)
    t = torch.tensor([1 - 3 / 1000])
    freqs = [1.0, math.exp(-math.log(10000.0) / 2)]
    expected = [math.cos(997 * f) for f in freqs] + [math.sin(997 * f) for f in freqs]
    torch.testing.assert_close(emb(t)[0], torch.tensor(expected), rtol=1e-4, atol=1e-4)


def test_training_records_the_scale_in_the_network_spec():
    assert TrainConfig(method="rectified_flow", network=NET).network["time_embed_scale"] == 30.0
    assert TrainConfig(method="ddpm", network=NET).network["time_embed_scale"] == 1000.0
    # A spec that says its scale keeps it (the benchmark's old-scale arm does this).
    cfg = TrainConfig(method="cfm", network={**NET, "time_embed_scale": 1000.0})
    assert cfg.network["time_embed_scale"] == 1000.0


def test_a_saved_model_reloads_with_its_scale_and_reproduces_its_outputs(tmp_path):
    cfg = TrainConfig(method="rectified_flow", steps=3, batch_size=8, network=NET,
                      checkpoint_every=3, log_every=3)
    model = train(cfg, torch.randn(64, 2), progress=False).model
    path = tmp_path / "m.pt"
    save_model(path, model, schedule_kwargs={}, network=cfg.network, meta={})
    loaded = load_model(path)
    assert loaded.net.time_embed[0].scale == 30.0
    x, t = torch.randn(5, 2), torch.rand(5)
    torch.testing.assert_close(loaded.net(x, t), model.net(x, t), rtol=0, atol=0)


def test_a_spec_without_the_key_builds_the_scale_1000_it_was_trained_with():
    old = build_network(NET)  # what a model file written before the key holds
    assert old.time_embed[0].scale == 1000.0
    assert UNet(shape=(1, 8, 8), base_channels=8).time_embed[0].scale == 1000.0
    # ...and the scale matters: the same weights at scale 30 answer differently.
    new = build_network({**NET, "time_embed_scale": 30.0})
    new.load_state_dict(old.state_dict())
    x, t = torch.randn(4, 2), torch.full((4,), 0.5)
    assert not torch.allclose(old(x, t), new(x, t))


def test_a_non_positive_scale_is_refused():
    with pytest.raises(ValueError, match="time_embed_scale must be positive"):
        MLP(time_embed_scale=0.0)
    with pytest.raises(ValueError, match="time_embed_scale must be positive"):
        UNet(time_embed_scale=-1.0)
