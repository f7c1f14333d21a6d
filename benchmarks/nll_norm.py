"""dopri5 error norm of the NLL: the old max over entries against the sampler's RMS.

At the same rtol = atol, the NLL ODE is solved with each norm on

- the exact oracle of 8gaussians (:class:`sfbench.eval.oracle.GaussianMixtureOracle`,
  rectified-flow path), whose log-density is known in closed form: the
  figure is the mean |NLL - exact| over the points;
- a trained model file (``--model``), if given: its steps, time and NLL.

The old norm is reproduced by handing torchdiffeq the max-over-entries norm
that sfbench.eval.nll used before issue 15 (wrapping ``odeint``).

    python -m benchmarks.nll_norm [--model m.pt] [--n 300] [--tol 1e-5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import sfbench.eval.nll as nll_module


def max_norm(tensors):
    return torch.stack([t.abs().max() for t in tensors]).max()


def run(model, x, tol: float, norm: str, exact=None) -> dict:
    original = nll_module.odeint

    def odeint(*args, options=None, **kwargs):
        if norm == "max":
            options = {**(options or {}), "norm": max_norm}
        return original(*args, options=options, **kwargs)

    nll_module.odeint = odeint
    try:
        t0 = time.perf_counter()
        res = nll_module.nll_nats(model, x, rtol=tol, atol=tol)
        seconds = time.perf_counter() - t0
    finally:
        nll_module.odeint = original
    row = {"norm": norm, "nfe": res.nfe, "seconds": seconds, "nll_nats": res.mean_nats}
    if exact is not None:
        row["mean_abs_error_nats"] = float((res.nll_nats - exact).abs().mean())
        row["max_abs_error_nats"] = float((res.nll_nats - exact).abs().max())
    return row


def oracle_case(n: int):
    """(8gaussians' exact rectified-flow oracle, n test points in float64, their exact NLL)."""
    from sfbench.data import get_dataset
    from sfbench.eval.oracle import GaussianMixtureOracle
    from sfbench.paths import RectifiedFlowSchedule

    ds = get_dataset("8gaussians")
    x = torch.as_tensor(ds.sample(1000, 0, "test")[:n], dtype=torch.float64)
    oracle = GaussianMixtureOracle(ds.mixture, RectifiedFlowSchedule())
    exact = -oracle.log_prob(x, torch.tensor(oracle.schedule.t_end, dtype=torch.float64))
    return oracle, x, exact


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    oracle, x, exact = oracle_case(args.n)
    for norm in ("max", "rms"):
        print(json.dumps({"model": "oracle (float64)", **run(oracle, x, args.tol, norm, exact)}),
              flush=True)
    if args.model:
        from sfbench.checkpoint import load_model

        model = load_model(args.model)
        for norm in ("max", "rms"):
            print(json.dumps({"model": args.model, **run(model, x.float(), args.tol, norm)}),
                  flush=True)


if __name__ == "__main__":
    main()
