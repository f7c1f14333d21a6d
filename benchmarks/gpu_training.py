"""Training throughput on a GPU with the `gpu` preset's networks and batches.

For each network of ``config/gpu.yaml`` (the 2-D MLP at its batch, the
Fashion-MNIST and CIFAR-10 U-Nets at theirs), rectified flow, three settings
of :func:`sfbench.train.train`, measured in one process:

- ``fp32``: float32 throughout;
- ``bf16``: bf16 autocast (the preset's setting, ``precision: auto`` on CUDA);
- ``bf16+compile``: the same with ``torch.compile`` of the network.

Seconds per step are *marginal*: the median wall time of a run of 3N steps
minus that of a run of N steps, over 2N. Fixed costs (the compile of the first
call, model set-up, the first batches) cancel. Settings alternate within each
round so that drifting clocks hit all alike. The bare PyTorch loop of
``benchmarks.train_step`` (fp32, same MLP, batch and optimizer) gives
sfbench's training-step overhead on the GPU.

Image batches are uniform pixels in [-1, 1] of the dataset's shape: the data's
content does not change the work of a step, and the datasets are not needed.
FLOPs per step are counted as in ``benchmarks.flops`` (matmuls and
convolutions of forward and backward) and set against the bf16 peak of a
square matmul measured in the same run (the fp32 peak is recorded too).
``fp32`` keeps PyTorch's defaults: matmuls in full fp32, cuDNN convolutions
in TF32.

    python -m benchmarks.gpu_training [--steps 30] [--rounds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import yaml

from benchmarks.flops import step_flops
from benchmarks.reporting import emit, ratio
from benchmarks.train_step import bare_loop
from sfbench.data import get_dataset
from sfbench.models import network_for
from sfbench.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"fp32": ("fp32", False), "bf16": ("bf16", False), "bf16+compile": ("bf16", True)}


def preset_cases(
    preset: Path, batch_multiplier: int = 1
) -> dict[str, tuple[dict, int, torch.Tensor]]:
    """{case: (network spec, batch size, CPU data)} from the preset's training blocks.

    ``batch_multiplier`` scales every batch (to see where bf16 starts to pay).
    """
    cfg = yaml.safe_load(preset.read_text())
    cases = {}
    net = network_for((2,), cfg["train"]["network"])
    data = torch.as_tensor(get_dataset("8gaussians").sample(100_000, seed=0))
    cases["mlp_2d"] = (net, cfg["train"]["batch_size"] * batch_multiplier, data)
    images = cfg["images"]
    gen = torch.Generator().manual_seed(0)
    for name, shape in (("unet_fashion_mnist", (1, 28, 28)), ("unet_cifar10", (3, 32, 32))):
        net = network_for(shape, images["train"].get("network"))
        pixels = torch.rand((2048, *shape), generator=gen) * 2 - 1
        cases[name] = (net, images["train"]["batch_size"] * batch_multiplier, pixels)
    return cases


def peak(dtype: torch.dtype, n: int = 8192, repeats: int = 10) -> float:
    """Best FLOP/s of an n x n x n matmul in ``dtype`` on the GPU."""
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    a @ b
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3)
    return 2 * n**3 / best


def measure_case(net: dict, batch: int, data: torch.Tensor, steps: int, rounds: int,
                 settings: tuple[str, ...] = tuple(SETTINGS)) -> dict:
    def config(setting: str, n: int) -> TrainConfig:
        precision, compile_ = SETTINGS[setting]
        return TrainConfig(method="rectified_flow", steps=n, batch_size=batch, network=net,
                           warmup_steps=0, device="cuda", precision=precision,
                           compile=compile_, log_every=max(n, 1))

    def seconds(setting: str, n: int) -> float:
        result = train(config(setting, n), data, progress=False)
        torch.cuda.synchronize()
        return result.wall_seconds

    for setting in settings:  # warm-up: kernels, cuDNN autotuning, the compile caches
        seconds(setting, 10)
    short = {s: [] for s in settings}
    long = {s: [] for s in settings}
    for _ in range(rounds):
        for setting in settings:
            short[setting].append(seconds(setting, steps))
            long[setting].append(seconds(setting, 3 * steps))
    flops = step_flops(config("fp32", 1), data[: 4 * batch].cpu())
    cells = {}
    for setting in settings:
        per_step = (statistics.median(long[setting]) - statistics.median(short[setting])) / (
            2 * steps)
        cells[setting] = {"ms_per_step": 1e3 * per_step, "samples_per_s": batch / per_step,
                          "achieved_flops_per_s": flops / per_step}
    return {"network_spec": net, "batch": batch, "flops_per_step": flops, "settings": cells}


def bare_overhead(net: dict, batch: int, data: torch.Tensor, steps: int, rounds: int) -> dict:
    """sfbench's fp32 step against the hand-written loop, both on CUDA, interleaved."""
    cfg = TrainConfig(method="rectified_flow", steps=steps, batch_size=batch, network=net,
                      device="cuda", precision="fp32", log_every=steps)
    bare_loop(cfg, data, device="cuda")  # warm-up
    bare, ours = [], []
    for _ in range(rounds):
        bare.append(bare_loop(cfg, data, device="cuda") / steps)
        torch.cuda.synchronize()
        ours.append(train(cfg, data, progress=False).wall_seconds / steps)
    return {"bare_ms_per_step_median": 1e3 * statistics.median(bare),
            "sfbench_ms_per_step_median": 1e3 * statistics.median(ours),
            "overhead_ratio": statistics.median(ours) / statistics.median(bare)}


def run(steps: int = 30, rounds: int = 2, preset: Path = REPO / "config" / "gpu.yaml",
        partial: str | None = None, batch_multiplier: int = 1,
        settings: tuple[str, ...] = tuple(SETTINGS)) -> dict:
    """The figures; with ``partial``, the record so far is rewritten there after each case."""
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks.gpu_training needs a CUDA device; none is available")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown or not settings:
        raise ValueError(f"settings must be among {', '.join(SETTINGS)}, got {list(settings)}")
    torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's default, stated rather than assumed
    peaks = {"bf16": peak(torch.bfloat16), "fp32": peak(torch.float32)}
    cases = preset_cases(preset, batch_multiplier)
    # One name per ratio across result files (the guard refuses duplicates).
    scale = "" if batch_multiplier == 1 else f"_batch_x{batch_multiplier}"
    result = {"benchmark": "gpu_training", "preset": preset.name, "steps": steps,
              "batch_multiplier": batch_multiplier,
              "rounds": rounds, "matmul_peak_flops_per_s": peaks, "cases": {}, "ratios": {}}
    net, batch, data = cases["mlp_2d"]
    result["mlp_overhead"] = bare_overhead(net, batch, data, 10 * steps, rounds)
    result["ratios"][f"gpu_train_step_overhead{scale}"] = ratio(
        result["mlp_overhead"]["overhead_ratio"], "lower", 1.05)
    print(f"[gpu_training] mlp overhead {result['mlp_overhead']}", file=sys.stderr, flush=True)
    for name, (net, batch, data) in cases.items():
        case = measure_case(net, batch, data, steps, rounds, settings)
        for cell in case["settings"].values():
            # One yardstick for all settings: the tensor-core (bf16) peak. "fp32" runs
            # PyTorch's defaults, under which cuDNN convolutions use TF32 tensor cores.
            cell["fraction_of_bf16_peak"] = cell["achieved_flops_per_s"] / peaks["bf16"]
        s = case["settings"]
        for key, (slow, fast) in {"bf16_speedup": ("fp32", "bf16"),
                                  "compile_speedup": ("bf16", "bf16+compile")}.items():
            if slow in s and fast in s:
                case[key] = s[slow]["ms_per_step"] / s[fast]["ms_per_step"]
                result["ratios"][f"gpu_{name}{scale}_{key}"] = ratio(case[key], "higher")
        result["cases"][name] = case
        print(f"[gpu_training] {name}: " + ", ".join(
            f"{k} {v['ms_per_step']:.2f} ms/step" for k, v in s.items()), file=sys.stderr,
            flush=True)
        if partial:
            Path(partial).write_text(json.dumps(result, indent=2))
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--preset", type=Path, default=REPO / "config" / "gpu.yaml")
    parser.add_argument("--batch-multiplier", type=int, default=1)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    return emit(run(args.steps, args.rounds, args.preset, partial=args.json,
                    batch_multiplier=args.batch_multiplier, settings=tuple(args.settings)),
                args.json)


if __name__ == "__main__":
    main()
