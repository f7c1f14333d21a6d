"""The report's provenance text: where it came from, the protocol behind every number, and
the package versions -- all read from the records themselves."""

from __future__ import annotations

import json

import pandas as pd

from sfbench import provenance
from sfbench.report.results import Results
from sfbench.report.sections.common import unique


def protocol(res: Results) -> list[str]:
    """The settings behind the numbers, one line each, read from the records."""
    lines = []
    for r in res.data.to_dict("records") if len(res.data) else []:
        lines.append(
            f"data `{r['dataset']}`: {r['n_train']} training points, {r['n_test']} test points, "
            f"data seed {r['data_seed']}"
        )
    lines += _sampling(res)
    lines += _selection(res)
    seeds = sorted(set(res.train["seed"])) if len(res.train) else []
    if seeds:
        lines.append(f"training seeds: {', '.join(map(str, seeds))} (mean ± std over these)")
    for t in unique(
        {k: r["settings"].get(k) for k in ("method", "steps", "batch_size", "lr", "ema_decay",
                                           "network")}
        for r in res.records.get("train", [])
    ):
        lines.append(
            f"training `{t['method']}`: {t['steps']} steps, batch {t['batch_size']}, lr {t['lr']}, "
            f"EMA {t['ema_decay']}, network {json.dumps(t['network'], sort_keys=True)}"
        )
    resumed = [r for r in res.records.get("train", []) if r["result"].get("resumed_from_step")]
    if resumed:
        lines.append(
            f"{len(resumed)} of {len(res.records['train'])} models resumed from a checkpoint; "
            "their training time counts only the part after the resume"
        )
    for n in unique(
        {"n_test": r["settings"].get("n_test"), **(r["settings"].get("nll") or {})}
        for r in res.records.get("nll", [])
    ):
        rest = ", ".join(f"{k} {v}" for k, v in n.items() if k != "n_test")
        lines.append(f"NLL: {n['n_test']} test points, probability-flow ODE; {rest}")
    lines += _references(res)
    lines += _image_protocol(res)
    from sfbench.eval.distances import MMD_BANDWIDTHS

    lines.append(
        "metrics: exact W2 (POT `emd2`, squared Euclidean cost); unbiased MMD² with RBF "
        f"bandwidths {', '.join(map(str, MMD_BANDWIDTHS))}; FD = Fréchet distance of the "
        "raw coordinates (2-D data); NLL in nats per point"
    )
    return lines


def _sampling(res: Results) -> list[str]:
    """The sweeps' sampling protocol: sample counts, noise seed, solvers, grids, trajectories."""
    lines = []
    sweeps = res.records.get("sweep", [])
    for s in unique(
        {**{k: r["settings"][k] for k in ("n_samples", "n_test", "sampling_seed", "solvers",
                                          "steps", "adaptive", "trajectory")},
         "grids": r["settings"].get("grids", ["uniform"]),
         "data_kind": r["settings"].get("data_kind", "vector")}
        for r in sweeps
    ):
        adaptive = "; ".join(
            f"{name} at rtol = atol in {', '.join(f'{t:g}' for t in tols)}"
            for name, tols in s["adaptive"].items()
        ) or "none"
        grids = " and ".join(s["grids"])
        lines.append(
            f"sampling ({s['data_kind']} data): {s['n_samples']} samples per cell against "
            f"{s['n_test']} test points, noise seed {s['sampling_seed']} (sample i starts from "
            f"the same noise in every cell); fixed-step solvers {', '.join(s['solvers'])} at "
            f"{', '.join(map(str, s['steps']))} steps on the {grids} time grid; "
            f"adaptive: {adaptive}"
        )
        if s.get("trajectory"):
            t = s["trajectory"]
            lines.append(
                f"trajectories: first {t['n_points']} samples of {t['solver']} "
                f"at {t['steps']} steps"
            )
    return lines


def _selection(res: Results) -> list[str]:
    """How a best cell is chosen and what its reported mean ± std is over (per data kind)."""
    from sfbench.eval.metrics import METRICS, SELECTION

    lines = []
    for s in unique(
        {"data_kind": r["settings"].get("data_kind", "vector"),
         "sampling_seed": r["settings"].get("sampling_seed"),
         "held_out_seeds": list(r["settings"].get("held_out_seeds") or []),
         "native": bool(r["settings"].get("native", False))}
        for r in res.records.get("sweep", [])
    ):
        kind = s["data_kind"]
        cells = res.cells[res.cells["data_kind"] == kind] if len(res.cells) else res.cells
        counts = (sorted(set(cells.groupby(["dataset", "method"])["seed"].nunique()))
                  if len(cells) else [0])
        seeds = "-".join(map(str, dict.fromkeys((counts[0], counts[-1]))))
        metric = METRICS[SELECTION[kind]].label
        held = s["held_out_seeds"]
        text = (
            f"selection ({kind} data): a cell (a method's solver, step count or tolerance, "
            f"grid) is chosen by the mean over the training seeds ({seeds} per method) of its "
            f"{metric} on the selection noise seed {s['sampling_seed']}; "
        )
        if held:
            text += (
                f"every cell is also sampled on {len(held)} held-out noise seeds "
                f"({', '.join(map(str, held))}), and the best-of tables (answers, headline, "
                "summaries, best by solver, quality, baseline) report the chosen cell's "
                f"held-out figure: mean ± std over training seeds x held-out seeds ({seeds} x "
                f"{len(held)} values); grid tables, curves and figures show selection-seed means"
            )
        else:
            text += (
                "no held-out noise seeds: the best-of tables report the selection-seed values "
                "(mean ± std over training seeds), measured on the draws the cell was chosen "
                "on, so optimistic"
            )
        if s["native"]:
            text += "; each solver also sampled in its native setting (grid, options)"
        lines.append(text)
    return lines


def _references(res: Results) -> list[str]:
    """How the yardsticks were drawn: noise floors (vector data), floor and baseline (images)."""
    lines = []
    for r in res.reference.to_dict("records") if len(res.reference) else []:
        seeds = ", ".join(map(str, r["reference_seeds"]))
        if r["data_kind"] == "image":
            lines.append(
                f"FID yardsticks `{r['dataset']}` ({r['n_samples']} images each, seeds {seeds}): "
                "floor = random subsets of the train split; baseline = samples of the Gaussian "
                "fitted to the train split's pixels (mean and full covariance: what matching "
                "the first two pixel moments alone gives), clipped and rounded like samples"
            )
            continue
        lines.append(
            f"noise floor `{r['dataset']}`: {len(r['reference_seeds'])} independent draws of "
            f"{r['n_samples']} points (data seeds {seeds}) against the test split"
        )
    return lines


def _image_protocol(res: Results) -> list[str]:
    """The FID protocol of every image sweep and the classifiers, read from their records."""
    lines = []
    for p in unique(
        r["settings"]["fid_protocol"] for r in res.records.get("sweep", [])
        if r["settings"].get("fid_protocol")
    ):
        text = (
            f"FID/KID `{p['dataset']}`: extractor {p['extractor']} (sha256 "
            f"{(p.get('extractor_sha256') or '')[:16]}…), features: {p.get('features')}; "
            f"{p['n_samples']} samples per cell against the {p['n_reference']} images of the "
            f"{p['reference_split']} split; samples: {p['sample_preprocessing']}; resize "
            f"{p.get('resize')}; KID: {p['kid_subsets']} subsets of {p['kid_subset_size']}, "
            f"kernel {p['kid_kernel']}"
        )
        if p.get("classifier_test_accuracy") is not None:
            text += f"; classifier test accuracy {p['classifier_test_accuracy']:.4f}"
        lines.append(text)
    for r in res.records.get("classifier", []):
        s, out = r["settings"], r["result"]
        lines.append(
            f"digits classifier (trained by the pipeline on the train split): {s.get('steps')} "
            f"steps, seed {s.get('seed')}, test accuracy {out['test_accuracy']:.4f} on "
            f"{out['n_test']} images, sha256 {out['sha256'][:16]}…"
        )
    return lines


def origin_line(origin: dict) -> str:
    """Where the report came from, and how to tell whether it is still current."""
    m = origin["machine"]
    where = f"{m['cpu']}, {m['logical_cpus']} logical CPUs" + (f", {m['gpu']}" if m["gpu"] else "")
    commit = origin["git_commit"][:12] + (" with uncommitted changes" if origin["git_dirty"]
                                          else "")
    return (
        f"Built from commit `{commit}`, preset `{origin['preset']}` (config hash "
        f"`{origin['config_hash']}`), on {where} ({m['os']}); torch "
        f"{origin['libraries'].get('torch')}. `sfbench report --check` says whether this "
        f"report is stale for the code and preset of a checkout (`{provenance.PROVENANCE_FILE}` "
        "holds the fingerprints it compares)."
    )


def versions(res: Results) -> pd.DataFrame:
    """Every package version any record was produced with (several where they differ)."""
    envs = [r.get("environment") or {} for rs in res.records.values() for r in rs]
    keys = sorted({k for e in envs for k in e})
    rows = []
    for k in keys:
        vals = sorted({str(e.get(k)) for e in envs})
        rows.append({"package": k, "version": ", ".join(vals)})
    return pd.DataFrame(rows)
