"""The U-Net: shapes, flat input, zero output at init, per-sample independence, model files."""

from __future__ import annotations

import pytest
import torch

from sfbench.checkpoint import build_model, load_model, save_model
from sfbench.eval.divergence import exact_divergence
from sfbench.models import UNet, default_network, network_for
from sfbench.models.registry import network_sample_shape

TINY = {"base_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1}


def perturbed(net: torch.nn.Module, scale: float = 0.05) -> torch.nn.Module:
    """The network with every weight jittered, so the zero-initialised output layer is not 0."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
    return net


@pytest.mark.parametrize("shape, mult, attention", [
    ((1, 8, 8), [1, 2], False),
    ((1, 8, 8), [1, 2], True),
    ((3, 32, 32), [1, 2, 2], True),
    ((1, 28, 28), [1, 2, 2], False),
])
def test_output_has_the_input_shape(shape, mult, attention):
    net = UNet(shape, base_channels=8, channel_mult=mult, attention=attention)
    x, t = torch.randn(3, *shape), torch.rand(3)
    assert net(x, t).shape == x.shape
    assert net.dim == x[0].numel() and net.shape == shape


def test_zero_output_at_init_then_depends_on_x_and_t():
    net = UNet((1, 8, 8), **TINY)
    x = torch.randn(4, 1, 8, 8)
    assert net(x, torch.rand(4)).abs().max() == 0  # the output conv starts at zero
    perturbed(net)
    out = net(x, torch.full((4,), 0.3))
    assert not torch.allclose(out, net(x, torch.full((4,), 0.7)))
    assert not torch.allclose(out, net(x + 0.1, torch.full((4,), 0.3)))


def test_flat_input_gives_flat_output_equal_to_the_image_one():
    net = perturbed(UNet((1, 8, 8), **TINY, attention=True))
    x, t = torch.randn(5, 1, 8, 8), torch.rand(5)
    flat = net(x.reshape(5, 64), t)
    assert flat.shape == (5, 64)
    torch.testing.assert_close(flat, net(x, t).reshape(5, 64))
    assert net(x, torch.tensor(0.5)).shape == x.shape  # a scalar t is broadcast


def test_samples_do_not_interact():
    # Group norm and attention act within a sample, so the exact divergence (which applies
    # each basis cotangent to the whole batch) is the per-sample trace.
    net = perturbed(UNet((1, 8, 8), **TINY, attention=True)).eval()
    x, t = torch.randn(3, 1, 8, 8), torch.rand(3)
    y = x.clone()
    y[1:] = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(net(x, t)[0], net(y, t)[0])


def test_exact_divergence_of_the_unet_is_the_jacobian_trace():
    net = perturbed(UNet((1, 8, 8), **TINY, attention=True)).double().eval()
    x, t = torch.randn(2, 64, dtype=torch.float64), torch.tensor([0.2, 0.9], dtype=torch.float64)
    _, div = exact_divergence(lambda y: net(y, t), x)
    for i in range(2):
        ti = t[i : i + 1]
        jac = torch.autograd.functional.jacobian(lambda y, ti=ti: net(y[None], ti)[0], x[i])
        assert div[i].item() == pytest.approx(torch.trace(jac).item(), rel=1e-9)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="not divisible by 4"):
        UNet((1, 10, 10), channel_mult=[1, 2, 2])
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        UNet((64,))
    with pytest.raises(ValueError, match=r"\[batch, 1, 8, 8\] or \[batch, 64\]"):
        UNet((1, 8, 8), **TINY)(torch.randn(2, 1, 4, 4), torch.rand(2))


def test_defaults_by_shape_and_user_overrides():
    assert default_network((2,))["kind"] == "mlp" and default_network((2,))["dim"] == 2
    digits = default_network((1, 8, 8))
    assert digits["kind"] == "unet" and digits["shape"] == [1, 8, 8]
    UNet(**{k: v for k, v in default_network((3, 32, 32)).items() if k != "kind"})
    UNet(**{k: v for k, v in default_network((1, 28, 28)).items() if k != "kind"})
    spec = network_for((1, 8, 8), {"base_channels": 16, "shape": [9, 9, 9]})
    assert spec["base_channels"] == 16 and spec["shape"] == [1, 8, 8]  # shape from the data
    mlp = network_for((1, 8, 8), {"kind": "mlp", "width": 32})
    assert mlp == {"kind": "mlp", "width": 32, "dim": 64}
    assert network_sample_shape(spec) == (1, 8, 8) and network_sample_shape(mlp) == (64,)


def test_model_file_round_trip(tmp_path):
    spec = {"kind": "unet", "shape": [1, 8, 8], **TINY}
    model = build_model("ddpm", {}, spec)
    perturbed(model.net)
    save_model(tmp_path / "m.pt", model, schedule_kwargs={}, network=spec, meta={})
    loaded = load_model(tmp_path / "m.pt")
    x = torch.randn(2, 64)
    torch.testing.assert_close(loaded.predict(x, 0.5).eps, model.eval().predict(x, 0.5).eps)
