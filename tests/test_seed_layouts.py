"""The stacked-seeds layout of benchmarks/seed_layouts.py trains each seed as `train` does."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ lives beside src/

from benchmarks import seed_layouts as layouts  # noqa: E402
from sfbench.checkpoint import build_model  # noqa: E402
from sfbench.train import TrainConfig, train  # noqa: E402


def nets(seeds):
    out = []
    for s in seeds:
        cfg = TrainConfig.from_dict({**layouts.SETTINGS, "method": layouts.METHOD, "seed": s})
        torch.manual_seed(s)
        out.append(build_model(cfg.method, cfg.schedule, cfg.network).net)
    return out


def test_stacked_forward_is_each_networks_forward():
    members = nets([0, 1, 2])
    stacked = layouts.StackedMLP(members)
    x, t = torch.randn(3 * 50, 2), torch.rand(3 * 50)
    out = stacked(x, t).view(3, 50, 2)
    for i, net in enumerate(members):
        torch.testing.assert_close(out[i], net(x[50 * i: 50 * (i + 1)], t[50 * i: 50 * (i + 1)]),
                                   rtol=1e-5, atol=1e-6)
        state = stacked.seed_state(i)
        assert state.keys() == net.state_dict().keys()
        for name, value in net.state_dict().items():
            torch.testing.assert_close(state[name], value)


def test_clip_per_seed_is_clip_grad_norm_of_each_seed():
    members = nets([0, 1])
    stacked = layouts.StackedMLP(members)
    x, t = torch.randn(2 * 8, 2), torch.rand(2 * 8)
    (100 * stacked(x, t).pow(2).sum()).backward()  # large gradients, so both seeds are clipped
    for i, net in enumerate(members):
        (100 * net(x[8 * i: 8 * (i + 1)], t[8 * i: 8 * (i + 1)]).pow(2).sum()).backward()
        torch.nn.utils.clip_grad_norm_(list(net.parameters()), 1.0)
    layouts.clip_per_seed(list(stacked.parameters()), 1.0)
    for i, net in enumerate(members):
        grads = {n: p.grad for n, p in net.named_parameters()}
        mine = {"input.weight": stacked.input.weight.grad[i].t(),
                "output.bias": stacked.output.bias.grad[i, 0]}
        for name, g in mine.items():
            torch.testing.assert_close(g, grads[name], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("steps", [25])
def test_stacked_training_ends_at_trains_weights(steps):
    settings = {**layouts.SETTINGS, "steps": steps, "warmup_steps": 5}
    data = layouts._data(2000)
    ema, _ = layouts.train_stacked([0, 1], data, settings)
    for i, seed in enumerate([0, 1]):
        ref = train(TrainConfig.from_dict({**settings, "method": layouts.METHOD, "seed": seed}),
                    data, progress=False).model.net.state_dict()
        for name, diff in layouts.relative_differences(ema, i, ref).items():
            assert diff < 1e-5, name
