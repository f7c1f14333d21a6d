"""Time embedding scale: dopri5 NFE, NLL cost, W2 and NLL of each 2-D method at two scales.

The MLP embeds ``scale * t`` with sinusoidal features. Scale 1000 (every model
before ``time_embed_scale`` was recorded) suits a DDPM step index; on a
continuous t in [0, 1] it makes the learned field oscillate in t and adaptive
solvers pay for it. This script trains each method with the default preset's
settings (config/default.yaml: 1500 steps, batch 512, lr 2e-3, 100 warm-up
steps, EMA 0.999, MLP 128 x 3, 20000 training points of data seed 0) at the
old scale (1000) and at the scale :func:`sfbench.models.presets.time_embed_scale`
chooses, then measures

- dopri5 sampling NFE at rtol = atol = 1e-5 (1000 samples, noise seed 12345),
- W2 of those samples against the 1000-point test split,
- the NLL of the first 300 test points (dopri5, rtol = atol = 1e-5): its
  solver evaluations and wall time, and its value in nats.

    python -m benchmarks.time_embedding --out /tmp/h2/te [--methods ...] [--dataset 8gaussians]
        [--threads 1] [--json table.json]

Models are saved under ``--out`` and reused by a rerun (delete them to retrain).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

METHODS = ["ddpm", "dsm", "probability_flow", "cfm", "ot_cfm", "rectified_flow"]
TRAIN = {"steps": 1500, "batch_size": 512, "lr": 2e-3, "warmup_steps": 100, "ema_decay": 0.999}
NETWORK = {"kind": "mlp", "width": 128, "depth": 3, "activation": "silu", "time_embed_dim": 64,
           "dim": 2}


def trained(method: str, scale: float | None, train_data, out: Path, seed: int):
    """The model of (method, scale), trained now or read back; None = the chosen scale."""
    from sfbench.checkpoint import load_model, save_model
    from sfbench.train import TrainConfig, train

    network = dict(NETWORK) if scale is None else {**NETWORK, "time_embed_scale": scale}
    cfg = TrainConfig(method=method, seed=seed, network=network, **TRAIN)
    path = out / f"{method}_scale{cfg.network['time_embed_scale']:g}_seed{seed}.pt"
    if path.exists():
        return load_model(path), cfg.network["time_embed_scale"], None
    result = train(cfg, train_data, progress=False)
    save_model(path, result.model, schedule_kwargs=cfg.schedule, network=cfg.network,
               meta={"benchmark": "time_embedding"})
    return result.model, cfg.network["time_embed_scale"], result.wall_seconds


def measure(model, test, n_nll: int, tol: float) -> dict:
    from sfbench.eval.distances import wasserstein2
    from sfbench.eval.nll import nll_nats
    from sfbench.sampling import generate

    s = generate(model, "dopri5", None, len(test), seed=12345, rtol=tol, atol=tol)
    t0 = time.perf_counter()
    nll = nll_nats(model, test[:n_nll], rtol=tol, atol=tol)
    return {
        "dopri5_nfe": s.nfe,
        "w2": wasserstein2(s.samples, test),
        "nll_nfe": nll.nfe,
        "nll_seconds": time.perf_counter() - t0,
        "nll_nats": nll.mean_nats,
        "nll_stderr": nll.stderr_nats,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--dataset", default="8gaussians")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scales", nargs="+", default=["1000", "chosen"],
                   help="scales to compare; 'chosen' = time_embed_scale's choice")
    p.add_argument("--n-nll", type=int, default=300)
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--train-only", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from sfbench.data import get_dataset

    args.out.mkdir(parents=True, exist_ok=True)
    ds = get_dataset(args.dataset)
    train_data = ds.sample(20000, 0, "train")
    test = torch.as_tensor(ds.sample(1000, 0, "test"), dtype=torch.float32)
    rows = []
    for method in args.methods:
        for scale in args.scales:
            model, used, train_s = trained(
                method, None if scale == "chosen" else float(scale), train_data, args.out,
                args.seed)
            row = {"method": method, "scale": used, "train_seconds": train_s}
            if not args.train_only:
                row.update(measure(model, test, args.n_nll, args.tol))
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
