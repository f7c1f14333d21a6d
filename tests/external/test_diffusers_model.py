"""A diffusers model directory as an sfbench model: diffusers' own sampler, every solver,
the schedule its scheduler config names, and the directory layouts."""

from __future__ import annotations

import json

import pytest
import torch
from external_helpers import DDIM, write_unet

from sfbench.external import load_any_model
from sfbench.external.wrappers import DiscreteTimeModel
from sfbench.sampling import generate
from sfbench.solvers import SOLVERS

diffusers = pytest.importorskip("diffusers")


@pytest.mark.parametrize("steps", [10, 50])
def test_ddim_equals_diffusers_ddim_loop(unet_dir, steps):
    """sfbench's ddim (eta 0, trailing lattice) = DDIMScheduler from the same noise, float32.

    The scheduler is diffusers' own, with its float32 tables, loaded from the same
    directory: what differs is only sfbench's float64 schedule and its solver.
    """
    model, info = load_any_model(unet_dir)
    assert info["source"] == "diffusers" and info["prediction"] == "epsilon"
    ours = generate(model, "ddim", steps, 6, seed=3)
    assert ours.nfe == steps

    unet = diffusers.UNet2DModel.from_pretrained(unet_dir, low_cpu_mem_usage=False)
    sch = diffusers.DDIMScheduler.from_pretrained(unet_dir)
    sch.set_timesteps(steps)
    y = ours.initial.reshape(6, 1, 8, 8).clone()
    with torch.no_grad():
        for j in sch.timesteps:
            y = sch.step(unet(y, j).sample, j, y, eta=0.0).prev_sample
    assert ours.samples.dtype == torch.float32
    torch.testing.assert_close(ours.samples, y.reshape(6, -1), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(ours.samples, ours.initial, atol=1e-2)  # the net did something


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_every_solver_samples_a_diffusers_model(tmp_path, solver):
    d = write_unet(tmp_path / "u", diffusers.DDPMScheduler, clip_sample=False)
    model, _ = load_any_model(d)
    native = SOLVERS[solver].native
    grid = {} if SOLVERS[solver].adaptive else {"grid": native.grid,
                                               "grid_options": dict(native.grid_options)}
    options = {"rtol": 1e-3, "atol": 1e-3} if solver == "dopri5" else {}
    res = generate(model, solver, 4, 5, seed=1, **grid, **dict(native.options), **options)
    assert res.samples.shape == (5, 64)
    assert torch.isfinite(res.samples).all()


@pytest.mark.parametrize("config", [
    {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
    {"beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 500},
    {"trained_betas": torch.linspace(1e-3, 0.05, 200).tolist(), "num_train_timesteps": 200},
])
def test_schedule_is_the_schedulers_alphas_cumprod_at_each_timestep(tmp_path, config):
    """alphabar of diffusers' timestep j is sfbench's alpha^2 at t = 1 - (j + 1) / T."""
    d = write_unet(tmp_path / "u", diffusers.DDPMScheduler, **config)
    model, info = load_any_model(d)
    ref = diffusers.DDPMScheduler.from_pretrained(d).alphas_cumprod.double()
    T = len(ref)
    assert model.schedule.num_steps == T == info["schedule"]["num_steps"]
    t = 1.0 - (torch.arange(T, dtype=torch.float64) + 1) / T
    torch.testing.assert_close(model.schedule(t).alpha ** 2, ref, rtol=2e-5, atol=1e-9)
    expected = "trained" if "trained_betas" in config else config["beta_schedule"]
    assert info["schedule"]["beta_schedule"] == expected


def test_lattice_times_reach_the_network_as_whole_timesteps(unet_dir):
    """The grid's times are whole diffusers timesteps, even after a float32 round trip."""
    model, _ = load_any_model(unet_dir)
    seen = []
    model.net.register_forward_pre_hook(lambda m, args: seen.append(args[1].clone()))
    generate(model, "ddim", 10, 2, seed=0)
    assert [int(j[0]) for j in seen] == list(range(999, 0, -100))
    assert all(torch.equal(j, j.round()) for j in seen)
    x = torch.zeros(2, 64)
    model.predict(x, torch.tensor([0.999, 0.5], dtype=torch.float32))
    assert seen[-1].tolist() == [0.0, 499.0]


def test_pipeline_layout_and_learned_variance(tmp_path):
    """unet/ + scheduler/ is read too; a learned-variance output's first half is the eps."""
    root = tmp_path / "pipe"
    write_unet(root / "unet", diffusers.DDPMScheduler, unet={"out_channels": 2},
               variance_type="learned_range", clip_sample=False)
    (root / "scheduler").mkdir()
    (root / "unet" / "scheduler_config.json").rename(root / "scheduler" / "scheduler_config.json")
    model, info = load_any_model(root)
    assert model.learned_variance and info["method"] == "pipe"
    x, t = torch.randn(3, 64), torch.full((3,), 0.3, dtype=torch.float64)
    j = (1 - t) * 1000 - 1
    with torch.no_grad():
        eps = model.net(x.reshape(3, 1, 8, 8), j.float()).sample[:, :1].reshape(3, -1)
    torch.testing.assert_close(model.predict(x, t).eps, eps)


def test_record_names_the_source(unet_dir):
    _, info = load_any_model(unet_dir)
    assert info["external"] is True and info["path"] == str(unet_dir)
    assert info["method"] == "unet" and info["dataset"] is None
    assert info["scheduler"] == "DDIMScheduler" and info["model_class"] == "UNet2DModel"
    assert info["schedule"] == {"name": "ddpm", "t_start": 0.0, "t_end": 0.999,
                                "beta_start": 0.0001, "beta_end": 0.02, "num_steps": 1000}
    json.dumps(info)


def test_the_wrapper_class_is_the_loaders(unet_dir):
    model, _ = load_any_model(unet_dir)
    assert isinstance(model, DiscreteTimeModel) and model.sample_shape == (1, 8, 8)
    assert not model.one_step and model.has_score
    assert DDIM["timestep_spacing"] == "trailing"


def test_without_diffusers_the_error_names_the_extra(unet_dir, monkeypatch):
    import sys

    from sfbench.errors import ExternalModelError

    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` raises ImportError
    with pytest.raises(ExternalModelError, match=r'pip install -e "\.\[diffusers\]"'):
        load_any_model(unet_dir)


def test_sfbench_imports_diffusers_only_to_load_a_diffusers_model():
    import subprocess
    import sys

    code = ("import sys, sfbench.external, sfbench.commands.common, sfbench.paths; "
            "print('diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("under_no_grad", [False, True])
def test_nll_divergence_of_a_diffusers_unet_is_the_jacobians_trace(unet_dir, under_no_grad):
    """The NLL's vmapped divergence works on a UNet2DModel with attention (whose backward
    under no_grad vmap cannot batch) and equals the trace of its autograd Jacobian."""
    import contextlib

    from sfbench.eval.divergence import exact_divergence

    model, _ = load_any_model(unet_dir)
    x = torch.randn(3, 64, generator=torch.Generator().manual_seed(0))

    def velocity(y):
        return model.predict(y, 0.4).velocity

    with torch.no_grad() if under_no_grad else contextlib.nullcontext():  # as the NLL calls it
        v, div = exact_divergence(velocity, x)
    traces = [torch.autograd.functional.jacobian(velocity, x[i : i + 1]).reshape(64, 64).trace()
              for i in range(3)]
    torch.testing.assert_close(div, torch.stack(traces), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(v, velocity(x))
