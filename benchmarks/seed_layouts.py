"""Three layouts for training the seeds of one small 2-D model, timed one after another.

    python -m benchmarks.seed_layouts [--seeds 3] [--steps 1500] [--json FILE]

The `default` preset trains each 2-D model (MLP 128 x 3, batch 512, 1500
steps) in its own `sfbench train` process. This measures what that layout
costs against two with fewer processes, on the preset's rectified-flow
settings (8gaussians, 20000 training points):

- **per process**: one `python -m sfbench train` per seed, as the pipeline runs
  them (interpreter start-up, imports, data, the model file and its record);
- **one process**: the seeds one after another in one Python process
  (`sfbench.train.train` called per seed; start-up and imports paid once);
- **stacked**: the seeds' networks stacked along a leading axis and trained
  side by side in one process, every linear layer one batched matmul
  (`torch.baddbmm`) over the seeds. Each seed keeps its own initial weights,
  random stream (the same draws, in the same order, as `train`), AdamW state,
  gradient-norm clip and EMA, so it is the per-seed training in another
  arithmetic order; the benchmark reports how far its EMA weights end from
  `train`'s.

One torch thread (what a pipeline job runs with on a 2-core machine, two jobs
at a time). The figures go to BENCHMARKS.md ("Training seeds side by side").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from benchmarks.reporting import machine, ratio

METHOD, DATASET = "rectified_flow", "8gaussians"
SETTINGS = {"steps": 1500, "batch_size": 512, "lr": 2.0e-3, "warmup_steps": 100,
            "ema_decay": 0.999,
            "network": {"kind": "mlp", "dim": 2, "width": 128, "depth": 3, "activation": "silu",
                        "time_embed_dim": 64}}


class StackedLinear(nn.Module):
    """S linear layers of one shape, applied to S batches at once: ``[S, B, i] -> [S, B, o]``."""

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        # stored transposed, so that the forward is x @ W^T + b as one baddbmm
        self.weight = nn.Parameter(torch.stack([m.weight.detach().t() for m in layers]).clone())
        self.bias = nn.Parameter(torch.stack([m.bias.detach()[None] for m in layers]).clone())

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def unstacked(self, s: int) -> dict[str, Tensor]:
        return {"weight": self.weight[s].t(), "bias": self.bias[s, 0]}


class StackedMLP(nn.Module):
    """S copies of :class:`sfbench.models.mlp.MLP` (one per seed) as one module.

    Takes the seeds' batches concatenated, ``[S * B, d]``, as the method's
    loss hands them over, and returns ``[S * B, d]``: row block s goes through
    network s.
    """

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        first = nets[0]
        self.n, self.dim, self.act = len(nets), first.dim, first.act
        self.sample_shape = first.sample_shape
        self.embed = first.time_embed[0]  # the sinusoidal features have no weights
        self.time_linear = StackedLinear([m.time_embed[1] for m in nets])
        self.time_act = first.time_embed[2]
        self.input = StackedLinear([m.input for m in nets])
        self.time_proj = nn.ModuleList(
            StackedLinear([m.time_proj[i] for m in nets]) for i in range(len(first.time_proj)))
        self.hidden = nn.ModuleList(
            StackedLinear([m.hidden[i] for m in nets]) for i in range(len(first.hidden)))
        self.output = StackedLinear([m.output for m in nets])

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        batch = x.shape[0] // self.n
        emb = self.time_act(self.time_linear(self.embed(t).view(self.n, batch, -1)))
        h = self.input(x.view(self.n, batch, self.dim))
        for proj, layer in zip(self.time_proj, self.hidden, strict=True):
            h = layer(self.act(h + proj(emb)))
        return self.output(self.act(h)).reshape(x.shape)

    def seed_state(self, s: int) -> dict[str, Tensor]:
        """Network s's weights under :class:`MLP`'s state-dict names."""
        out = {f"time_embed.1.{k}": v for k, v in self.time_linear.unstacked(s).items()}
        out.update({f"input.{k}": v for k, v in self.input.unstacked(s).items()})
        out.update({f"output.{k}": v for k, v in self.output.unstacked(s).items()})
        for name in ("time_proj", "hidden"):
            for i, layer in enumerate(getattr(self, name)):
                out.update({f"{name}.{i}.{k}": v for k, v in layer.unstacked(s).items()})
        return out


def clip_per_seed(params: list[Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` applied to each seed's slice of the stacked gradients."""
    norms = torch.stack([p.grad.pow(2).flatten(1).sum(1) for p in params]).sum(0).sqrt()
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(coef.view(-1, *([1] * (p.dim() - 1))))


def train_stacked(seeds: list[int], data: Tensor,
                  settings: dict) -> tuple[StackedMLP, float]:
    """The seeds' models trained side by side; the EMA networks and the loop's seconds."""
    import copy

    from sfbench.checkpoint import build_model
    from sfbench.couplings import COUPLINGS
    from sfbench.distributed import micro_batch_seed
    from sfbench.losses import per_sample_loss
    from sfbench.model import NetworkModel
    from sfbench.train import TrainConfig, ema_decay_at, lr_factor

    cfgs = [TrainConfig.from_dict({**settings, "method": METHOD, "seed": s}) for s in seeds]
    cfg = cfgs[0]
    members = []
    for c in cfgs:
        torch.manual_seed(c.seed)  # the initial weights train() would start from
        members.append(build_model(c.method, c.schedule, c.network))
    net = StackedMLP([m.net for m in members])
    model = NetworkModel(net, members[0].method, members[0].schedule)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    gens = [torch.Generator().manual_seed(micro_batch_seed(c.seed + 1, 0)) for c in cfgs]
    params, ema_params = list(net.parameters()), list(ema.parameters())
    couple = COUPLINGS[model.method.coupling]
    start = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        opt.zero_grad(set_to_none=True)
        xs, ts, es = [], [], []
        for g in gens:  # train()'s draws, in its order, from each seed's own stream
            x = data[torch.randint(data.shape[0], (cfg.batch_size,), generator=g)]
            eps = torch.randn(x.shape, generator=g)
            x, eps = couple(x, eps, g)
            ts.append(model.method.t_density(x.shape[0], g, model.schedule, x.device))
            xs.append(x)
            es.append(eps)
        per_sample = per_sample_loss(model, torch.cat(xs), torch.cat(ts), torch.cat(es))
        # the sum over seeds of each seed's mean: every seed gets its own gradient
        loss = per_sample.view(len(seeds), -1).mean(1)
        loss.sum().backward()
        if not torch.isfinite(loss).all():  # train() checks every step on the CPU too
            raise RuntimeError(f"non-finite loss at step {step}: {loss.tolist()}")
        clip_per_seed(params, cfg.grad_clip)
        opt.step()
        sched.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1.0 - ema_decay_at(step - 1, cfg.ema_decay))
    return ema, time.perf_counter() - start


def relative_differences(stacked: StackedMLP, s: int, ref: dict[str, Tensor]) -> dict[str, float]:
    """|w - w_ref| / |w_ref| of each tensor of network ``s`` against the state dict ``ref``."""
    return {name: float((value - ref[name]).norm() / ref[name].norm())
            for name, value in stacked.seed_state(s).items()}


def _data(n_train: int = 20000) -> Tensor:
    from sfbench.data import get_dataset

    return torch.as_tensor(get_dataset(DATASET).sample(n_train, 0, "train"), dtype=torch.float32)


def per_process(seeds: list[int], settings: dict, workdir: Path) -> float:
    """Wall seconds of one `sfbench train` process per seed, one after another."""
    import yaml

    cfg = workdir / "train.yaml"
    cfg.write_text(yaml.safe_dump(settings))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    for s in seeds:
        subprocess.run(
            [sys.executable, "-m", "sfbench", "train", "--method", METHOD, "--dataset", DATASET,
             "--seed", str(s), "--config", str(cfg), "--no-progress",
             "--out", str(workdir / f"seed{s}.pt"), "--result", str(workdir / f"seed{s}.json")],
            check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run(seeds: int = 3, steps: int = 1500) -> dict:
    """Time the three layouts on ``seeds`` seeds of ``steps`` steps; the record with its ratios."""
    from sfbench.train import TrainConfig, train

    seed_list = list(range(seeds))
    settings = {**SETTINGS, "steps": steps}
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="sfbench-seeds-") as tmp:
        proc_s = per_process(seed_list, settings, Path(tmp))

    start = time.perf_counter()
    data = _data()
    one = {s: train(TrainConfig.from_dict({**settings, "method": METHOD, "seed": s}), data,
                    progress=False) for s in seed_list}
    one_s = time.perf_counter() - start

    start = time.perf_counter()
    # each layout draws its own training data, as each of its processes would
    ema, stacked_loop = train_stacked(seed_list, _data(), settings)
    stacked_s = time.perf_counter() - start
    # how far each seed's EMA weights end from train()'s (same draws, other arithmetic order)
    rel = [d for i, s in enumerate(seed_list)
           for d in relative_differences(ema, i, one[s].model.net.state_dict()).values()]
    return {
        "benchmark": "seed_layouts", "method": METHOD, "dataset": DATASET, "seeds": seeds,
        "settings": settings, "torch_threads": 1,
        "per_process_s": proc_s, "one_process_s": one_s,
        "one_process_loops_s": sum(r.wall_seconds for r in one.values()),
        "stacked_s": stacked_s, "stacked_loop_s": stacked_loop,
        "stacked_vs_train_max_rel_weight_diff": max(rel),
        "ratios": {
            "seed_layouts_one_process_speedup": ratio(proc_s / one_s, "higher"),
            "seed_layouts_stacked_speedup": ratio(proc_s / stacked_s, "higher"),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=SETTINGS["steps"])
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    r = {**run(args.seeds, args.steps), "machine": machine()}
    base = r["per_process_s"]
    print(f"{args.seeds} seeds x {args.steps} steps of {METHOD} on {DATASET}, 1 torch thread")
    for label, key in (("one process per seed", "per_process_s"),
                       ("seeds in turn, one process", "one_process_s"),
                       ("seeds stacked, one process", "stacked_s")):
        print(f"  {label:28s} {r[key]:6.1f} s  ({base / r[key]:.2f}x)")
    print(f"  training loops: in turn {r['one_process_loops_s']:.1f} s, stacked "
          f"{r['stacked_loop_s']:.1f} s; stacked EMA weights vs train(): max relative "
          f"difference {r['stacked_vs_train_max_rel_weight_diff']:.1e}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
