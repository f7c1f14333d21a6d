"""Machine use: achieved FLOP/s of a training step as a fraction of the measured matmul peak.

For the 2-D MLP (batch 512) and the digits U-Net (batch 128), rectified flow:

- FLOPs of one step: ``torch.utils.flop_counter.FlopCounterMode`` around the
  loss's forward and backward pass (matmuls and convolutions; the optimizer,
  EMA and elementwise work are not counted, so the fraction is a lower bound
  of what the machine does);
- seconds per step: :func:`sfbench.train.train` for a fixed number of steps
  (all of it: batch draw, loss, backward, clipping, AdamW, EMA);
- peak: the best float32 throughput of a square matmul (n = 1024) with the
  same threads, measured in the same run, before and after the steps (the
  best of both, so a busy moment on a shared machine does not lower it).

    python -m benchmarks.flops [--steps 100] [--rounds 3] [--device cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.reporting import emit, ratio
from sfbench.checkpoint import build_model
from sfbench.data import get_dataset
from sfbench.losses import training_loss
from sfbench.models import default_network
from sfbench.train import TrainConfig, train

#: (network spec, data, batch) per case.
CASES = {
    "mlp": ((2,), "8gaussians", 512),
    "unet": ((1, 8, 8), "digits", 128),
}


def matmul_peak_flops(n: int = 1024, repeats: int = 10, device: str = "cpu") -> float:
    """Best float32 FLOP/s of ``a @ b`` (2 n^3 FLOPs) over ``repeats`` tries."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    a @ b  # warm-up
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def step_flops(cfg: TrainConfig, data: torch.Tensor) -> int:
    """FLOPs of one training step's forward and backward pass (the matmul/conv part)."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.method, cfg.schedule, cfg.network)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    batch = data[: cfg.batch_size]
    with FlopCounterMode(display=False) as counter:
        training_loss(model, batch, gen).backward()
    return counter.get_total_flops()


def measure(kind: str, steps: int, rounds: int, device: str = "cpu") -> dict:
    shape, dataset, batch = CASES[kind]
    data = torch.as_tensor(get_dataset(dataset).sample(2000, seed=0))
    cfg = TrainConfig(
        method="rectified_flow", steps=steps, batch_size=batch, network=default_network(shape),
        warmup_steps=0, device=device, precision="fp32",
    )
    flops = step_flops(cfg, data)
    train(TrainConfig(**{**cfg.__dict__, "steps": 5}), data, progress=False)  # warm-up
    seconds = statistics.median(
        train(cfg, data, progress=False).wall_seconds / steps for _ in range(rounds)
    )
    return {"network": kind, "network_spec": cfg.network, "batch": batch,
            "flops_per_step": flops, "ms_per_step_median": 1e3 * seconds,
            "achieved_flops_per_s": flops / seconds}


def run(steps: int = 100, rounds: int = 3, device: str = "cpu") -> dict:
    """On CUDA the step runs in float32 too (precision "fp32"), to compare with the fp32 peak."""
    peak_before = matmul_peak_flops(device=device)
    cells = [measure(kind, steps, rounds, device) for kind in CASES]
    peak = max(peak_before, matmul_peak_flops(device=device))
    for c in cells:
        c["fraction_of_peak"] = c["achieved_flops_per_s"] / peak
    return {
        "benchmark": "flops",
        "matmul_peak_flops_per_s": peak,
        "matmul_n": 1024,
        "device": device,
        "steps_per_round": steps,
        "rounds": rounds,
        "cells": cells,
        "ratios": {
            f"fraction_of_peak_{c['network']}": ratio(c["fraction_of_peak"], "higher")
            for c in cells
        },
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    return emit(run(args.steps, args.rounds, args.device), args.json)


if __name__ == "__main__":
    main()
