"""Training-step overhead of sfbench against a bare PyTorch loop.

Both sides train the same MLP with the same batch size, AdamW, gradient
clipping, EMA and warm-up/cosine learning rate on rectified flow; the bare
loop writes the loss by hand. Runs alternate (A, B, A, B, ...) in one
process so that machine noise hits both alike; the figure is the ratio of
median wall times per step.

    python -m benchmarks.train_step [--steps 300] [--rounds 5] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time

import torch

from benchmarks.reporting import emit, ratio
from sfbench.data import get_dataset
from sfbench.models import MLP
from sfbench.train import TrainConfig, lr_factor, train


def bare_loop(cfg: TrainConfig, data: torch.Tensor, device: str = "cpu") -> float:
    """Seconds for cfg.steps steps of a hand-written rectified-flow loop (fp32, on ``device``)."""
    torch.manual_seed(cfg.seed)
    net_cfg = {k: v for k, v in cfg.network.items() if k != "kind"}
    net = MLP(**net_cfg).to(device)
    data = data.to(device=device, dtype=torch.float32)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    start = time.perf_counter()
    for _ in range(cfg.steps):
        idx = torch.randint(data.shape[0], (cfg.batch_size,), generator=gen, device=device)
        x = data[idx]
        eps = torch.randn(x.shape, generator=gen, device=device)
        t = torch.rand(x.shape[0], generator=gen, device=device)
        x_t = t[:, None] * x + (1 - t[:, None]) * eps
        loss = (net(x_t, t) - (x - eps)).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), net.parameters(), strict=True):
                e.lerp_(p, 1 - cfg.ema_decay)
        if not math.isfinite(loss.item()):
            raise RuntimeError("non-finite loss")
    return time.perf_counter() - start


def sfbench_loop(cfg: TrainConfig, data: torch.Tensor) -> float:
    start = time.perf_counter()
    train(cfg, data, checkpoint_dir=None, progress=False)
    return time.perf_counter() - start


def run(steps: int = 300, rounds: int = 5, batch_size: int = 512) -> dict:
    cfg = TrainConfig(method="rectified_flow", steps=steps, batch_size=batch_size)
    data = torch.as_tensor(get_dataset("8gaussians").sample(20000, seed=0))
    bare_loop(TrainConfig(steps=20), data)  # warm-up: allocator, kernels
    sfbench_loop(TrainConfig(steps=20), data)
    bare, ours = [], []
    for _ in range(rounds):
        bare.append(bare_loop(cfg, data) / cfg.steps)
        ours.append(sfbench_loop(cfg, data) / cfg.steps)
    overhead = statistics.median(ours) / statistics.median(bare)
    return {
        "benchmark": "train_step",
        "network": cfg.network,
        "batch_size": cfg.batch_size,
        "steps_per_round": cfg.steps,
        "rounds": rounds,
        "bare_ms_per_step_median": 1e3 * statistics.median(bare),
        "sfbench_ms_per_step_median": 1e3 * statistics.median(ours),
        "overhead_ratio": overhead,
        "ratios": {"train_step_overhead": ratio(overhead, "lower", 1.05)},
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (the pipeline runs every job with one)",
    )
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    return emit(run(args.steps, args.rounds, args.batch_size), args.json)


if __name__ == "__main__":
    main()
