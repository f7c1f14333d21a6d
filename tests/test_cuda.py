"""The CUDA path: bf16 training, torch.compile, deterministic kernels, sampling on the GPU.

Skipped without a CUDA device (CI has none); run on a GPU machine with
``pytest tests/test_cuda.py``. The CPU-side switches are tested in test_accel.py.
"""

import pytest
import torch

from sfbench.data import get_dataset
from sfbench.errors import NonFiniteLossError
from sfbench.models import default_network
from sfbench.sampling import generate
from sfbench.train import TrainConfig, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def gaussians():
    return torch.as_tensor(get_dataset("8gaussians").sample(4000, seed=0))


def _digits_like(n: int = 256) -> torch.Tensor:
    return torch.rand((n, 1, 8, 8), generator=torch.Generator().manual_seed(0)) * 2 - 1


def _config(**kw) -> TrainConfig:
    base = dict(method="rectified_flow", steps=300, batch_size=256, warmup_steps=20,
                log_every=50, device="cuda")
    return TrainConfig(**{**base, **kw})


def test_training_on_cuda_autocasts_to_bf16_and_learns(gaussians):
    result = train(_config(), gaussians, progress=False)
    assert result.device.startswith("cuda") and result.precision == "bf16"
    assert next(result.model.parameters()).device.type == "cuda"
    first, last = result.loss_history[0][1], result.loss_history[-1][1]
    assert last < 0.8 * first, result.loss_history


def test_compiled_training_keeps_the_plain_network_and_matches_eager(gaussians):
    # Same seed, fp32: compile changes kernels, not the mathematics.
    eager = train(_config(steps=60, precision="fp32"), gaussians, progress=False)
    compiled = train(_config(steps=60, precision="fp32", compile=True), gaussians, progress=False)
    keys = set(compiled.model.net.state_dict())
    assert keys == set(eager.model.net.state_dict())  # no "_orig_mod." prefix: saveable as is
    for a, b in zip(eager.model.net.parameters(), compiled.model.net.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_deterministic_mode_gives_bit_identical_unet_weights():
    data = _digits_like()
    cfg = _config(steps=30, batch_size=64, network=default_network((1, 8, 8)),
                  deterministic=True)
    try:
        a = train(cfg, data, progress=False).model.net.state_dict()
        b = train(cfg, data, progress=False).model.net.state_dict()
    finally:
        from sfbench.accel import deterministic_settings

        deterministic_settings(False)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("solver", ["heun", "euler_maruyama"])
def test_sampling_on_cuda_matches_the_cpu(gaussians, solver):
    # The noise of sample i comes from (seed, i) on the CPU, so the device
    # changes only rounding: fp32 states agree closely after 16 steps.
    model = train(_config(steps=100, precision="fp32"), gaussians, progress=False).model
    torch.backends.cuda.matmul.allow_tf32 = False
    on_gpu = generate(model, solver, 16, 500, seed=3).samples.cpu()
    on_cpu = generate(model.cpu(), solver, 16, 500, seed=3).samples
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)


def test_a_non_finite_loss_read_back_late_still_names_its_step_and_saves_nothing(tmp_path):
    # On CUDA losses are read once per log line: the error must still name
    # the first bad step, and no checkpoint may hold the weights after it.
    bad = torch.full((100, 2), 1e30)
    with pytest.raises(NonFiniteLossError, match="at step 1;"):
        train(_config(steps=120, log_every=50, checkpoint_every=100), bad,
              checkpoint_dir=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_nll_and_vlb_on_cuda_match_the_cpu(tmp_path):
    """`sfbench evaluate --nll --vlb --device cuda` of a small DDPM MLP on digits agrees
    with the same command on the CPU (same dequantization and probes)."""
    import json

    from sfbench.cli import main

    model = tmp_path / "m.pt"
    assert main(["train", "--method", "ddpm", "--dataset", "digits", "--steps", "50",
                 "--batch-size", "64", "--device", "cpu", "--no-progress", "--out", str(model),
                 "--result", str(tmp_path / "t.json")]) == 0
    records = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.json"
        assert main(["evaluate", "--nll", "--vlb", "--model", str(model), "--dataset", "digits",
                     "--n-test", "20", "--rtol", "1e-4", "--atol", "1e-4", "--device", device,
                     "--result", str(out)]) == 0
        records[device] = json.loads(out.read_text())["result"]
    for key in ("nll_bits_per_dim", "vlb_bits_per_dim_mean"):
        assert abs(records["cpu"][key] - records["cuda"][key]) < 1e-3, key
