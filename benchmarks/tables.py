"""BENCHMARKS.md's tables, generated from the result JSONs between markers.

A generated block is everything between ``<!-- generated: NAME -->`` and
``<!-- end generated: NAME -->``; the prose around it is written by hand and
kept. NAME is a result file's stem (``train_step`` -> ``results/train_step.json``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

MARKER = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated: (?P=name) -->)",
    re.DOTALL,
)


def machine_line(record: dict) -> str:
    m = record.get("machine", {})
    quick = " (quick settings)" if record.get("quick") else ""
    return (f"*Measured {m.get('date', '?')}{quick} on {m.get('cores', '?')} cores of "
            f"{m.get('cpu', '?')}, GPU: {m.get('gpu') or 'none'}, torch {m.get('torch', '?')}, "
            f"{m.get('threads', '?')} torch thread(s), load average {m.get('load_average', '?')} "
            "at the end.*")


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _target(entry: dict) -> str:
    t = entry.get("target")
    if t is None:
        return "—"
    met = entry["value"] <= t if entry["better"] == "lower" else entry["value"] >= t
    return f"{'met' if met else 'missed'} ({'≤' if entry['better'] == 'lower' else '≥'} {t:g})"


def render_train_step(r: dict) -> str:
    entry = r["ratios"]["train_step_overhead"]
    return _table(
        ["bare PyTorch loop (ms/step)", "`sfbench.train.train` (ms/step)", "overhead", "target"],
        [[f"{r['bare_ms_per_step_median']:.2f}", f"{r['sfbench_ms_per_step_median']:.2f}",
          f"**{100 * (r['overhead_ratio'] - 1):.1f} %**", _target(entry)]],
    )


def render_ode_solvers(r: dict) -> str:
    rows = []
    for c in r["cells"]:
        extra = (f" (3/8 rule: {c['torchdiffeq_rk4_3_8_ms_median']:.1f})"
                 if "torchdiffeq_rk4_3_8_ms_median" in c else "")
        rows.append([c["network"], c["solver"], f"`{c['torchdiffeq_method']}`", c["batch"],
                     c["steps"], f"{c['max_abs_difference']:.1e}", f"{c['sfbench_ms_median']:.1f}",
                     f"{c['torchdiffeq_ms_median']:.1f}{extra}", f"**{c['speedup']:.2f}x**",
                     f"{c.get('sfbench_aten_ops', '?')} / {c.get('torchdiffeq_aten_ops', '?')}"])
    return _table(["network", "solver", "torchdiffeq", "batch", "steps", "max abs diff",
                   "sfbench (ms)", "torchdiffeq (ms)", "speed-up",
                   "ATen ops, sfbench / torchdiffeq"], rows)


def render_divergence(r: dict) -> str:
    exact = _table(
        ["network", "batch", "loop (ms)", "vectorised (ms)", "speed-up", "target 5x"],
        [[c["network"], c["batch"], f"{c['loop_ms_median']:.1f}",
          f"{c['vectorised_ms_median']:.1f}", f"**{c['speedup']:.1f}x**",
          "met" if c["speedup"] >= 5 else "missed"] for c in r["cells"]],
    )
    hutch = _table(
        ["network", "batch", "Hutchinson, 1 probe (samples/s)", "exact (samples/s)",
         "Hutchinson / exact"],
        [[h["network"], h["batch"], f"{h['hutchinson_samples_per_s']:.0f}",
          f"{h['exact_samples_per_s']:.0f}", f"{h['speedup_over_exact']:.1f}x"]
         for h in r.get("hutchinson", [])],
    )
    return f"{exact}\n\n{hutch}" if r.get("hutchinson") else exact


def render_flops(r: dict) -> str:
    table = _table(
        ["network", "batch", "GFLOP per step", "ms per step", "achieved GFLOP/s", "of peak"],
        [[c["network"], c["batch"], f"{c['flops_per_step'] / 1e9:.3f}",
          f"{c['ms_per_step_median']:.2f}", f"{c['achieved_flops_per_s'] / 1e9:.1f}",
          f"**{c['fraction_of_peak']:.0%}**"] for c in r["cells"]],
    )
    peak = r["matmul_peak_flops_per_s"] / 1e9
    return f"Measured float32 matmul peak (n = {r['matmul_n']}): {peak:.1f} GFLOP/s.\n\n{table}"


def render_pipeline(r: dict) -> str:
    o = r["overhead"]
    jobs = f"{r['jobs']} jobs, " if r.get("jobs") else ""
    head = (f"`--cores {r['cores']}`: {jobs}**{r['total_wall_s']:.0f} s** wall "
            f"({r['total_wall_s'] / 60:.1f} min), {r['total_cpu_s']:.0f} s CPU in all "
            f"processes, mean load average {r['mean_load_during']:.1f} during the run. "
            f"Outside model computation: **{o['outside_fraction_of_job_time']:.1%}** of job "
            f"time, {o.get('outside_fraction_of_core_time', float('nan')):.1%} of wall x cores.")
    table = _table(
        ["rule", "jobs", "job wall (s)", "model computation (s)", "outside (s)", "outside"],
        [[x["rule"], x["jobs"], f"{x['job_s']:.1f}",
          f"{x['compute_s']:.1f}" + (f" ({x['untimed_jobs']} untimed)" if x["untimed_jobs"]
                                     else ""),
          f"{x['outside_s']:.1f}", f"{x['outside_fraction']:.0%}"] for x in o["rules"]],
    )
    if r.get("snakemake_cpu_s") is not None:
        own = r["snakemake_cpu_s"]
        head += (f" Snakemake's own process: {own:.0f} s CPU, **{own / r['total_cpu_s']:.1%}** "
                 f"of the run's CPU ({own / r['total_wall_s']:.3f} of a core).")
    b = r.get("baseline")
    if b:
        head += (f"\n\nBaseline, run right after on the same machine: commit {b['commit']}, "
                 f"{b['jobs']} jobs, **{b['total_wall_s']:.0f} s** wall "
                 f"({b['total_wall_s'] / 60:.1f} min), {b['total_cpu_s']:.0f} s CPU; this run's "
                 f"wall time is **{r['total_wall_s'] / b['total_wall_s']:.2f}x** the baseline's.")
    missing = o.get("model_rules_without_timing")
    note = (f"\n\nRules that run models but record no in-process timing (counted as outside): "
            f"{', '.join(missing)}." if missing else "")
    return f"{head}\n\n{table}{note}"


def render_scaling(r: dict) -> str:
    return _table(
        ["--cores", "wall (s)", "CPU (s)", "mean load", "speed-up"],
        [[x["cores"], f"{x['total_wall_s']:.0f}", f"{x['total_cpu_s']:.0f}",
          f"{x['mean_load_during']:.1f}", f"**{x['speedup']:.2f}x**"] for x in r["runs"]],
    )


def render_gpu_training(r: dict) -> str:
    rows = []
    for name, c in r["cases"].items():
        for setting, cell in c["settings"].items():
            rows.append([name, c["batch"], setting, f"{cell['ms_per_step']:.2f}",
                         f"{cell['samples_per_s']:,.0f}",
                         f"{cell['achieved_flops_per_s'] / 1e12:.1f}",
                         f"{cell['fraction_of_bf16_peak']:.1%}"])
    table = _table(["network", "batch", "setting", "ms per step", "samples/s", "TFLOP/s",
                    "of bf16 peak"], rows)
    speedups = "; ".join(
        f"{name}: bf16 {c.get('bf16_speedup', float('nan')):.2f}x, "
        f"compile {c.get('compile_speedup', float('nan')):.2f}x" for name, c in r["cases"].items())
    o = r["mlp_overhead"]
    peaks = r["matmul_peak_flops_per_s"]
    return (f"Measured matmul peaks (n = 8192): bf16 {peaks['bf16'] / 1e12:.0f} TFLOP/s, fp32 "
            f"{peaks['fp32'] / 1e12:.0f} TFLOP/s.\n\n{table}\n\nSpeed-ups (ms per step, "
            f"fp32 over bf16; bf16 over bf16+compile): {speedups}.\n\nTraining-step overhead "
            f"against the bare PyTorch loop (MLP, fp32, CUDA): {o['bare_ms_per_step_median']:.2f} "
            f"against {o['sfbench_ms_per_step_median']:.2f} ms per step, "
            f"**{100 * (o['overhead_ratio'] - 1):+.1f} %**.")


def render_cli_startup(r: dict) -> str:
    # The target holds for both ratios of `sfbench --help`: the worse one decides.
    worse = max(r["ratios"].values(), key=lambda e: e["value"])
    rows = [[f"`{name}`", f"{c['wall_ms_median']:.0f}", f"{c['cpu_ms_median']:.0f}",
             f"**{c['wall_ratio']:.1f}x**", f"**{c['cpu_ratio']:.1f}x**",
             _target(worse) if name == "sfbench --help" else "—"]
            for name, c in r["commands"].items()]
    table = _table(["command", "wall (ms)", "CPU (ms)", "wall / `python -c pass`",
                    "CPU / `python -c pass`", "target"], rows)
    return f"{table}\n\nMedians of {r['rounds']} rounds."


def _seconds(side: dict, key: str, bound: bool = False) -> str:
    value = side[key]
    if value is None:
        return "—"
    return f"{'≥ ' if bound else ''}{value:.1f}"


#: The conditions of benchmarks/cli_threads.py: "idle" adds no load of its own.
THREAD_CONDITIONS = {"idle": "no added load", "loaded": "+ 1 busy process"}


def render_cli_threads(r: dict) -> str:
    default = r["torch_default_threads"]
    rows = []
    for key, c in r["conditions"].items():
        name = THREAD_CONDITIONS.get(key, key)
        for label, side in ((1, c["one_thread"]), (default, c["default_threads"])):
            n, stopped = len(side["runs"]), side["timed_out"]
            rows.append([
                name, f"{c['load_average_before']:.1f} → {c['load_average_after']:.1f}", label,
                _seconds(side, "wall_s_median", side["median_is_lower_bound"])
                + (f" ({stopped} of {n} stopped)" if stopped else ""),
                _seconds(side, "cpu_s_median"),
                # a stopped run has no loop time: the median is of the finished ones
                _seconds(side, "train_s_median") + (f" ({n - stopped} finished)"
                                                    if stopped and n > stopped else ""),
            ])
        bound = "≥ " if c["speedup_is_lower_bound"] else ""
        rows.append([name, "", "**one thread's speed-up**", f"**{bound}"
                     f"{c['speedup_of_one_thread']:.2f}x**", "", ""])
    return (f"`{r['command']}`, {r['rounds']} runs per side and condition, alternating; "
            f"torch's default here: {default} threads; a run is stopped at "
            f"{r['timeout_s']:.0f} s.\n\n") + _table(
        ["condition", "load average (before → after)", "threads", "wall (s, median)",
         "CPU (s, median)", "training loop (s, median)"], rows)


def render_nll_flow_matching(r: dict) -> str:
    rows = {(x["model"], x["tol"], x["library"]): x for x in r["rows"]}
    cells = []
    for model, tol in sorted({(m, t) for m, t, _ in rows}, key=lambda k: (k[0], -k[1])):
        s, f = rows[(model, tol, "sfbench")], rows[(model, tol, "flow_matching")]
        cells.append([model, f"{tol:.0e}", f"{s['nfe']} / {f['nfe']}",
                      f"{s['mean_abs_error_nats']:.2e} / {f['mean_abs_error_nats']:.2e}",
                      f"{s['seconds'] * 1e3:.0f} / {f['seconds'] * 1e3:.0f}",
                      f"**{f['seconds'] / s['seconds']:.2f}x**"])
    return _table(["model", "rtol = atol", "NFE (sfbench / flow_matching)",
                   "mean \\|NLL - exact or reference\\| (nats)", "time (ms)",
                   "flow_matching time / sfbench time"], cells)


def render_seed_layouts(r: dict) -> str:
    base = r["per_process_s"]
    rows = [[label, f"{r[key]:.1f}", f"**{base / r[key]:.2f}x**"] for label, key in (
        ("one `sfbench train` process per seed (the pipeline's layout)", "per_process_s"),
        ("the seeds in turn, one process", "one_process_s"),
        ("the seeds stacked (batched matmuls), one process", "stacked_s"))]
    s = r["settings"]
    return (f"{r['seeds']} seeds of {r['method']} on {r['dataset']}, {s['steps']} steps, batch "
            f"{s['batch_size']}, MLP {s['network']['width']} x {s['network']['depth']}, "
            f"{r['torch_threads']} torch thread.\n\n"
            + _table(["layout", "wall (s)", "speed-up"], rows)
            + f"\n\nTraining loops alone: in turn {r['one_process_loops_s']:.1f} s, stacked "
              f"{r['stacked_loop_s']:.1f} s. Stacked EMA weights against `train`'s (same draws): "
              f"largest relative difference of a tensor "
              f"{r['stacked_vs_train_max_rel_weight_diff']:.1e}.")


def renderer(name: str):
    if name.startswith("pipeline_scaling_"):
        return render_scaling
    if name.startswith("pipeline_"):
        return render_pipeline
    if name.startswith("gpu_training"):
        return render_gpu_training
    if name.startswith("divergence"):
        return render_divergence
    return {"train_step": render_train_step, "ode_solvers": render_ode_solvers,
            "divergence": render_divergence, "flops": render_flops,
            "cli_startup": render_cli_startup, "cli_threads": render_cli_threads,
            "nll_flow_matching": render_nll_flow_matching,
            "seed_layouts": render_seed_layouts}[name]


def render(name: str, results_dir: Path) -> str:
    path = results_dir / f"{name}.json"
    if not path.exists():
        return f"*Not measured yet: no `{path.name}` in `benchmarks/results/`.*\n"
    record = json.loads(path.read_text())
    return f"{renderer(name)(record)}\n\n{machine_line(record)}\n"


def update(markdown_path: str | Path, results_dir: str | Path) -> list[str]:
    """Rewrite every generated block of ``markdown_path``; the names of the blocks."""
    markdown_path, results_dir = Path(markdown_path), Path(results_dir)
    text = markdown_path.read_text()
    names: list[str] = []

    def fill(m: re.Match) -> str:
        names.append(m["name"])
        return f"{m.group(1)}{render(m['name'], results_dir)}{m.group(4)}"

    new = MARKER.sub(fill, text)
    if not names:
        raise ValueError(f"{markdown_path} has no '<!-- generated: NAME -->' blocks")
    markdown_path.write_text(new)
    return names
