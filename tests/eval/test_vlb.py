"""The DDPM variational bound in bits/dim, checked against discrete data of known entropy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from sfbench.data.gmm import GaussianMixture
from sfbench.eval.bits import level_spacing
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.eval.vlb import ddpm_vlb_bits_per_dim, log_discretized_gaussian
from sfbench.paths import DDPMSchedule, RectifiedFlowSchedule


def level_probs(levels, mu, s):
    """Grid and cell masses of N(mu, s^2), by upper-tail differences right of mu (no 1 - 1)."""
    grid = 2.0 * np.arange(levels) / (levels - 1) - 1.0
    z = (np.concatenate([[-np.inf], grid[:-1] + level_spacing(levels) / 2, [np.inf]]) - mu) / s
    left = norm.cdf(z[1:]) - norm.cdf(z[:-1])
    right = norm.sf(z[:-1]) - norm.sf(z[1:])
    return grid, np.where(grid > mu, right, left)


@pytest.mark.parametrize("mean, std", [(0.3, 0.2), (0.99, 0.01), (-5.0, 0.1), (0.0, 1e-3),
                                       (0.51, 0.0074)])
def test_decoder_probabilities_sum_to_one_and_match_the_normal_cdf(mean, std):
    levels = 17
    grid, p = level_probs(levels, mean, std)
    mean_t = torch.full((levels,), mean, dtype=torch.float64)
    logp = log_discretized_gaussian(torch.tensor(grid), mean_t, std, levels)
    assert torch.logsumexp(logp, 0).item() == pytest.approx(0.0, abs=1e-12)
    finite = p > 1e-300
    np.testing.assert_allclose(logp.numpy()[finite], np.log(p[finite]), rtol=1e-9, atol=1e-12)


def test_decoder_keeps_precision_far_in_the_tails():
    # The cell [0.4375, 0.5625] lies 47 to 53 standard deviations right of the mean, where
    # Phi(b) - Phi(a) = 1 - 1 would cancel to 0; the log-mass must still be exact.
    mean = torch.tensor([-0.5], dtype=torch.float64)
    logp = log_discretized_gaussian(torch.tensor([0.5]), mean, 0.02, 17)
    exact = norm.logsf((0.5 - 0.0625 + 0.5) / 0.02) + np.log1p(
        -np.exp(norm.logsf((0.5 + 0.0625 + 0.5) / 0.02) - norm.logsf((0.5 - 0.0625 + 0.5) / 0.02)))
    assert logp.item() == pytest.approx(exact, rel=1e-9)


def atoms_oracle(levels, dim, p, schedule):
    """The exact model of discrete data: a mixture of near-point masses on the level grid."""
    grid = 2.0 * np.arange(levels) / (levels - 1) - 1.0
    atoms = np.array(list(itertools.product(range(levels), repeat=dim)))
    w = np.prod(p[atoms], axis=1)
    covs = np.broadcast_to(1e-8 * np.eye(dim), (len(w), dim, dim)).copy()
    return GaussianMixtureOracle(GaussianMixture(w / w.sum(), grid[atoms], covs), schedule)


def test_bound_of_the_exact_model_is_tight_and_above_the_true_bits():
    # Data: 2 pixels, 5 levels, each discretized N(0, 0.5^2). With the exact model (the oracle
    # of the atom mixture) E[L] >= -log2 P(v) per image, and the gap of T = 1000 steps with the
    # optimal mean is small (measured 0.004 bits/dim for 3 pixels and 300 images).
    levels, dim = 5, 2
    _, p = level_probs(levels, 0.0, 0.5)
    v = np.random.default_rng(0).choice(levels, size=(100, dim), p=p)
    x = 2.0 * v / (levels - 1) - 1.0
    oracle = atoms_oracle(levels, dim, p, DDPMSchedule())
    res = ddpm_vlb_bits_per_dim(oracle, x, levels, dtype=torch.float64, batch_size=64)
    true_bits = -np.log2(p[v]).sum(1) / dim
    gap = res["bits"].numpy() - true_bits
    stderr = gap.std() / math.sqrt(len(gap))
    assert gap.mean() > -3 * stderr
    assert gap.mean() < 0.05
    assert res["vlb_prior_bits_per_dim"] < 1e-4  # alphabar_T = 4e-5
    assert res["vlb_decoder_bits_per_dim"] < 1e-6  # sigma_1 = 0.01 << half a cell (0.25)
    total = sum(res[f"vlb_{k}_bits_per_dim"] for k in ("prior", "diffusion", "decoder"))
    assert total == pytest.approx(res["vlb_bits_per_dim_mean"], rel=1e-12)


def test_bound_of_a_gaussian_model_lies_above_the_entropy():
    # A continuous Gaussian model of discretized Gaussian data is a poor discrete model, but its
    # bound must still exceed the data's entropy (cross-entropy >= entropy).
    levels, dim, mu, s = 17, 4, 0.1, 0.3
    grid, p = level_probs(levels, mu, s)
    entropy = -(p * np.log2(p)).sum()
    v = np.random.default_rng(1).choice(levels, size=(100, dim), p=p)
    m, var = (p * grid).sum(), (p * (grid - (p * grid).sum()) ** 2).sum()
    mixture = GaussianMixture(np.ones(1), np.full((1, dim), m), var * np.eye(dim)[None])
    res = ddpm_vlb_bits_per_dim(GaussianMixtureOracle(mixture, DDPMSchedule()),
                                2.0 * v / 16 - 1.0, levels, dtype=torch.float64)
    assert res["vlb_bits_per_dim_mean"] - 3 * res["vlb_bits_per_dim_stderr"] > entropy
    assert res["num_steps"] == 1000 and res["levels"] == 17 and res["dim"] == dim


def test_batching_does_not_change_the_bound_and_non_ddpm_is_refused():
    levels, dim = 5, 2
    _, p = level_probs(levels, 0.0, 0.5)
    x = 2.0 * np.random.default_rng(2).choice(levels, size=(10, dim), p=p) / 4 - 1.0
    oracle = atoms_oracle(levels, dim, p, DDPMSchedule(num_steps=100))
    a = ddpm_vlb_bits_per_dim(oracle, x, levels, dtype=torch.float64, batch_size=3)
    b = ddpm_vlb_bits_per_dim(oracle, x, levels, dtype=torch.float64, batch_size=10)
    torch.testing.assert_close(a["bits"], b["bits"], rtol=1e-12, atol=1e-12)
    assert a["num_steps"] == 100
    flow = atoms_oracle(levels, dim, p, RectifiedFlowSchedule())
    with pytest.raises(ValueError, match="discrete DDPM schedule"):
        ddpm_vlb_bits_per_dim(flow, x, levels)


def test_bits_per_dim_and_bound_of_a_digits_model_from_the_cli(tmp_path):
    import json

    from sfbench.checkpoint import build_model, save_model
    from sfbench.cli import main
    from sfbench.data import get_dataset

    spec = {"kind": "unet", "shape": [1, 8, 8], "base_channels": 8, "channel_mult": [1, 2]}
    schedule = {"num_steps": 100}  # a 100-step DDPM keeps the bound's 100 evaluations cheap
    model = build_model("ddpm", schedule, spec)
    torch.manual_seed(0)
    with torch.no_grad():  # a small non-zero eps prediction instead of the zero-initialised one
        for p in model.net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_model(tmp_path / "m.pt", model, schedule_kwargs=schedule, network=spec,
               meta={"dataset": "digits", "seed": 0})
    test = get_dataset("digits").load_split("test")
    np.savez(tmp_path / "d.npz", train=test, test=test)
    assert main(["evaluate", "--nll", "--vlb", "--model", str(tmp_path / "m.pt"), "--dataset",
                 "digits", "--data", str(tmp_path / "d.npz"), "--n-test", "3", "--rtol", "1e-3",
                 "--atol", "1e-3", "--result", str(tmp_path / "r.json")]) == 0
    rec = json.loads((tmp_path / "r.json").read_text())
    res, settings = rec["result"], rec["settings"]
    # Both are upper bounds on the bits of 17-level data: above 0, finite.
    assert 0 < res["nll_bits_per_dim"] < 50 and 0 < res["vlb_bits_per_dim_mean"] < 1e4
    assert settings["nll"]["divergence"] == "exact" and settings["nll"]["levels"] == 17
    assert settings["nll"]["bits_offset_per_dim"] == 3.0 and settings["nll"]["rtol"] == 1e-3
    assert settings["vlb"]["num_steps"] == 100 and settings["n_test"] == 3
