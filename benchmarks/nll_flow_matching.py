"""sfbench's NLL against flow_matching's ``ODESolver.compute_likelihood``, at equal accuracy.

Both integrate the probability-flow ODE of the same model with torchdiffeq's
dopri5 (rtol = atol = tol) and the exact divergence; they differ in how the
divergence is taken (sfbench: one vectorised backward pass over the basis,
``torch.func``; flow_matching: one ``autograd.grad`` per coordinate) and in
the state the error control sees. Accuracy is measured, not assumed:

- on the exact oracle of 8gaussians (rectified-flow path, float64), against
  its closed-form log-density: mean |NLL - exact| over the points;
- on a trained model file (``--model``, float32), against a tight reference
  (sfbench in float64 at tol 1e-9): mean |NLL - reference|.

For each tolerance, each library's error, NFE and wall time, in turn in one
process. "Equal accuracy" pairs each sfbench row with the loosest
flow_matching tolerance whose error is at most as large (1 % slack for
round-off: at equal tolerance the two take the same steps).

flow_matching (facebookresearch/flow_matching) is a benchmark-only dependency:

    .venv/bin/pip install -e ".[bench]"     # flow-matching (measured: 1.0.10)
    python -m benchmarks.nll_flow_matching [--model m.pt] [--n 300] [--threads 1]
    python -m benchmarks run --only nll_flow_matching   # the suite's record (a model trained
                                                        # in-process), guarded by `check`
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from benchmarks.nll_norm import oracle_case

TOLERANCES = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7)


def sfbench_nll(model, x, tol: float) -> tuple[torch.Tensor, int]:
    from sfbench.eval.nll import nll_nats

    res = nll_nats(model, x, rtol=tol, atol=tol, divergence="exact", batch_size=x.shape[0])
    return res.nll_nats, res.nfe


def flow_matching_nll(model, x, tol: float) -> tuple[torch.Tensor, int]:
    from flow_matching.solver import ODESolver
    from flow_matching.utils import ModelWrapper

    calls = {"n": 0}

    class Velocity(ModelWrapper):
        def forward(self, x, t, **extras):
            calls["n"] += 1
            return model.predict(x, t).velocity

    prior_std = float(model.schedule(torch.tensor(0.0, dtype=torch.float64)).sigma)
    dim = x.shape[1]

    def log_p0(z):
        return (-0.5 * (z / prior_std).pow(2).sum(1) - dim * math.log(prior_std)
                - 0.5 * dim * math.log(2 * math.pi))

    solver = ODESolver(Velocity(None))
    _, log_p = solver.compute_likelihood(
        x, log_p0, step_size=None, method="dopri5", atol=tol, rtol=tol, exact_divergence=True,
        time_grid=torch.tensor([1.0, 0.0], dtype=x.dtype),
    )
    return -log_p.detach(), calls["n"]


def measure(name: str, fn, model, x, reference, tol: float) -> dict:
    t0 = time.perf_counter()
    nll, nfe = fn(model, x, tol)
    seconds = time.perf_counter() - t0
    return {"library": name, "tol": tol, "nfe": nfe, "seconds": seconds,
            "nll_nats": float(nll.mean()),
            "mean_abs_error_nats": float((nll - reference).abs().mean())}


def compare(label: str, model, x, reference, repeats: int) -> list[dict]:
    rows = []
    for fn in (sfbench_nll, flow_matching_nll):  # warm-up: first-call set-up is not the solve
        fn(model, x[:8], 1e-3)
    for tol in TOLERANCES:
        for name, fn in (("sfbench", sfbench_nll), ("flow_matching", flow_matching_nll)):
            runs = [measure(name, fn, model, x, reference, tol) for _ in range(repeats)]
            row = {**runs[0], "seconds": sorted(r["seconds"] for r in runs)[len(runs) // 2],
                   "model": label}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for row in (r for r in rows if r["library"] == "sfbench"):
        matched = [r for r in rows if r["library"] == "flow_matching"
                   and r["mean_abs_error_nats"] <= 1.01 * row["mean_abs_error_nats"]]
        if matched:
            fm = max(matched, key=lambda r: r["tol"])
            print(json.dumps({"model": label, "equal_accuracy": {
                "sfbench_tol": row["tol"], "sfbench_error": row["mean_abs_error_nats"],
                "sfbench_seconds": row["seconds"], "flow_matching_tol": fm["tol"],
                "flow_matching_error": fm["mean_abs_error_nats"],
                "flow_matching_seconds": fm["seconds"],
                "time_ratio_sfbench_over_flow_matching": row["seconds"] / fm["seconds"]}}),
                flush=True)
    return rows


def small_trained_model(steps: int):
    """A rectified-flow MLP on 8gaussians (width 64, depth 2), trained here: a network,
    not a closed form, in float32, without a model file to ship."""
    from sfbench.data import get_dataset
    from sfbench.train import TrainConfig, train

    cfg = TrainConfig(method="rectified_flow", steps=steps, batch_size=256, warmup_steps=20,
                      network={"kind": "mlp", "dim": 2, "width": 64, "depth": 2,
                               "activation": "silu", "time_embed_dim": 32})
    return train(cfg, get_dataset("8gaussians").sample(20000, seed=0), progress=False).model


def run(n: int = 300, repeats: int = 5, train_steps: int = 1000, tol: float = 1e-5) -> dict:
    """The suite's figures: both models, every tolerance; guarded, the speed ratio
    (flow_matching seconds / sfbench seconds) at ``tol``, where both take the same steps."""
    from benchmarks.reporting import ratio

    oracle, x, exact = oracle_case(n)
    model = small_trained_model(train_steps)
    reference = sfbench_nll(model.double(), x, 1e-9)[0].float()
    model.float()
    rows = (compare("oracle", oracle, x, exact, repeats)
            + compare("mlp", model, x.float(), reference, repeats))
    ratios = {}
    for label in ("oracle", "mlp"):
        cell = {r["library"]: r for r in rows if r["model"] == label and r["tol"] == tol}
        if cell["sfbench"]["nfe"] != cell["flow_matching"]["nfe"]:
            raise RuntimeError(f"{label}: unequal steps at tol {tol}: {cell}")
        ratios[f"nll_speed_vs_flow_matching_{label}"] = ratio(
            cell["flow_matching"]["seconds"] / cell["sfbench"]["seconds"], "higher", 1.0)
    return {"benchmark": "nll_flow_matching", "n": n, "repeats": repeats,
            "train_steps": train_steps, "guarded_tol": tol, "rows": rows, "ratios": ratios}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="a trained model file of a flow method (float32)")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    oracle, x, exact = oracle_case(args.n)
    compare("oracle (float64)", oracle, x, exact, args.repeats)
    if args.model:
        from sfbench.checkpoint import load_model

        model = load_model(args.model)
        reference = sfbench_nll(model.double(), x, 1e-9)[0]
        compare(args.model, model.float(), x.float(), reference.float(), args.repeats)


if __name__ == "__main__":
    main()
