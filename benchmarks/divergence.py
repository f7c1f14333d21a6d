"""Exact divergence at 64 dimensions: sfbench's vectorised trace against a per-dimension loop.

Both sides compute tr(dv/dx) per sample of the same velocity field (a
rectified-flow model with the digits' default U-Net, or the MLP, at 64
dimensions) on the same batch:

- ``vectorised``: :func:`sfbench.eval.divergence.exact_divergence`, one forward pass
  and the 64 basis vector-Jacobian products batched by ``torch.func.vmap``;
- ``loop``: the textbook loop, one forward pass and 64 ``torch.autograd.grad``
  calls, d v_k / d x_k summed over k.

Runs alternate (loop, vectorised, loop, ...) in one process so that machine
noise hits both alike; the figure is the ratio of median wall times. The two
results are checked to agree before timing.

Hutchinson throughput: samples per second of
:func:`sfbench.eval.divergence.hutchinson_divergence` with one Rademacher probe (what
NLL uses beyond 64 dimensions), timed against the exact trace on the same
batch; its speed-up over exact is the ratio guarded.

    python -m benchmarks.divergence [--networks unet mlp] [--batches 1 8 64] [--rounds 5]
        [--threads 1] [--device cuda] [--json out.json]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.reporting import emit, interleaved_medians, ratio
from sfbench.checkpoint import build_model
from sfbench.eval.divergence import exact_divergence, hutchinson_divergence, rademacher_probes
from sfbench.models import default_network

DIM = 64


def loop_divergence(velocity, x: torch.Tensor) -> torch.Tensor:
    """tr(dv/dx) per sample by one autograd.grad call per dimension."""
    x = x.detach().requires_grad_(True)
    v = velocity(x).reshape(x.shape[0], -1)
    flat_grads = []
    for k in range(v.shape[1]):
        (g,) = torch.autograd.grad(v[:, k].sum(), x, retain_graph=k < v.shape[1] - 1)
        flat_grads.append(g.reshape(x.shape[0], -1)[:, k])
    return torch.stack(flat_grads, 1).sum(1).detach()


def network(kind: str) -> dict:
    if kind == "unet":
        return default_network((1, 8, 8))
    return {**default_network((DIM,)), "width": 256}


def perturbed_model(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("rectified_flow", {}, network(kind)).eval()
    with torch.no_grad():  # the zero-initialised U-Net output layer would make J = 0
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


def synced(fn, device: str):
    """``fn`` followed by a wait for the GPU, so a wall time covers the GPU's work."""
    if device != "cuda":
        return fn
    return lambda: (fn(), torch.cuda.synchronize())


def measure(kind: str, batch: int, rounds: int, device: str = "cpu") -> dict:
    """Median wall times of both sides on one (network, batch) cell, interleaved."""
    model = perturbed_model(kind).to(device)
    x = torch.randn(batch, DIM).to(device)  # the U-Net takes flat [B, 64] as samplers give it
    t = torch.tensor(0.5, device=device)

    def velocity(y):
        return model.predict(y, t).velocity

    reference = loop_divergence(velocity, x)
    _, vectorised = exact_divergence(velocity, x)
    torch.testing.assert_close(vectorised, reference, rtol=1e-4, atol=1e-4)
    med = interleaved_medians(
        {"loop": synced(lambda: loop_divergence(velocity, x), device),
         "vectorised": synced(lambda: exact_divergence(velocity, x), device)},
        rounds,
    )
    return {
        "network": kind,
        "batch": batch,
        "device": device,
        "loop_ms_median": 1e3 * med["loop"],
        "vectorised_ms_median": 1e3 * med["vectorised"],
        "speedup": med["loop"] / med["vectorised"],
        "max_abs_difference": float((vectorised - reference).abs().max()),
    }


def measure_hutchinson(kind: str, batch: int, rounds: int) -> dict:
    """Samples per second of the one-probe Hutchinson trace, and its speed-up over the exact one."""
    model = perturbed_model(kind)
    x = torch.randn(batch, DIM)
    t = torch.tensor(0.5)
    hutchinson = hutchinson_divergence(rademacher_probes(0, 0, tuple(x.shape), 1, x.dtype))

    def velocity(y):
        return model.predict(y, t).velocity

    med = interleaved_medians(
        {"exact": lambda: exact_divergence(velocity, x),
         "hutchinson": lambda: hutchinson(velocity, x)},
        rounds,
    )
    return {
        "network": kind,
        "batch": batch,
        "probes": 1,
        "hutchinson_samples_per_s": batch / med["hutchinson"],
        "exact_samples_per_s": batch / med["exact"],
        "speedup_over_exact": med["exact"] / med["hutchinson"],
    }


def run(networks=("unet", "mlp"), batches=(1, 8, 64), rounds: int = 5,
        hutchinson_batch: int = 256, device: str = "cpu") -> dict:
    """On CUDA only the exact trace against the loop is measured (no Hutchinson rows)."""
    cells = [measure(k, b, rounds, device) for k in networks for b in batches]
    hutchinson = ([measure_hutchinson(k, hutchinson_batch, rounds) for k in networks]
                  if device == "cpu" else [])
    where = "" if device == "cpu" else f"_{device}"  # one name per ratio across result files
    ratios = {
        f"divergence_speedup_{c['network']}_b{c['batch']}{where}": ratio(
            c["speedup"], "higher", 5.0)
        for c in cells
    }
    for h in hutchinson:
        ratios[f"hutchinson_over_exact_{h['network']}"] = ratio(h["speedup_over_exact"], "higher")
    return {
        "benchmark": "divergence",
        "device": device,
        "dim": DIM,
        "networks": {k: network(k) for k in networks},
        "rounds": rounds,
        "cells": cells,
        "hutchinson": hutchinson,
        "ratios": ratios,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", choices=("unet", "mlp"), default=["unet", "mlp"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 64])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    return emit(run(args.networks, args.batches, args.rounds, device=args.device), args.json)


if __name__ == "__main__":
    main()
