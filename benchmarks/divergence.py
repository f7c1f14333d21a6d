"""Exact divergence at 64 dimensions: sfbench's vectorised trace against a per-dimension loop.

Both sides compute tr(dv/dx) per sample of the same velocity field (a
rectified-flow model with the digits' default U-Net, or the MLP, at 64
dimensions) on the same batch:

- ``vectorised``: :func:`sfbench.eval.nll.exact_divergence`, one forward pass
  and the 64 basis vector-Jacobian products batched by ``torch.func.vmap``;
- ``loop``: the textbook loop, one forward pass and 64 ``torch.autograd.grad``
  calls, d v_k / d x_k summed over k.

Runs alternate (loop, vectorised, loop, ...) in one process so that machine
noise hits both alike; the figure is the ratio of median wall times. The two
results are checked to agree before timing.

    python benchmarks/divergence.py [--networks unet mlp] [--batches 1 8 64] [--rounds 5]
        [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from reporting import emit

from sfbench.checkpoint import build_model
from sfbench.eval.nll import exact_divergence
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


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def measure(kind: str, batch: int, rounds: int) -> dict:
    """Median wall times of both sides on one (network, batch) cell, interleaved."""
    torch.manual_seed(0)
    spec = network(kind)
    model = build_model("rectified_flow", {}, spec).eval()
    with torch.no_grad():  # the zero-initialised U-Net output layer would make J = 0
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    x = torch.randn(batch, DIM)  # the U-Net takes flat [B, 64] as the samplers give it
    t = torch.tensor(0.5)

    def velocity(y):
        return model.predict(y, t).velocity

    reference = loop_divergence(velocity, x)
    _, vectorised = exact_divergence(velocity, x)
    torch.testing.assert_close(vectorised, reference, rtol=1e-4, atol=1e-4)
    loop_s, vec_s = [], []
    for _ in range(rounds):
        loop_s.append(timed(loop_divergence, velocity, x))
        vec_s.append(timed(exact_divergence, velocity, x))
    return {
        "network": kind,
        "batch": batch,
        "loop_ms_median": 1e3 * statistics.median(loop_s),
        "vectorised_ms_median": 1e3 * statistics.median(vec_s),
        "speedup": statistics.median(loop_s) / statistics.median(vec_s),
        "max_abs_difference": float((vectorised - reference).abs().max()),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", choices=("unet", "mlp"), default=["unet", "mlp"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 64])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cells = [measure(k, b, args.rounds) for k in args.networks for b in args.batches]
    result = {
        "benchmark": "divergence",
        "dim": DIM,
        "networks": {k: network(k) for k in args.networks},
        "rounds": args.rounds,
        "cells": cells,
    }
    return emit(result, args.json)


if __name__ == "__main__":
    main()
