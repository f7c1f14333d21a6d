"""``sfbench report``: build the comparison report from result files.

Reads the JSON records written by ``sfbench data``, ``train``, ``sweep``,
``reference`` and ``evaluate --nll`` (given as ``--results``, or found under
``--results-dir``) and writes ``report.md``, a self-contained
``report.html``, ``tables/*.csv``, ``figures/*.png``, ``metrics.json`` and
``curves.csv`` into ``--out-dir``, and ``provenance.json``: the commit,
preset, config hash, machine and per-file code fingerprint it was built from.
These are exactly the files of the inputs' report manifest
(``sfbench.report.manifest``), which the workflow declares too.

``sfbench report --check`` builds nothing: it compares the fingerprints of a
report (by default the committed ``results/report``) with the code and the
preset file of this checkout, prints what differs and exits 1 when the report
is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sfbench.errors import SfbenchError

DEFAULT_DIR = "results/report"


def add_parser(sub):
    p = sub.add_parser("report", help="build the comparison report (or --check one)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--results", nargs="+", help="result JSON files of the pipeline's jobs")
    src.add_argument(
        "--results-dir",
        help="take every result JSON under this directory (except the report's own)",
    )
    src.add_argument(
        "--check", action="store_true",
        help="build nothing: exit 1 when the report in --out-dir is stale for this checkout's "
        "code and preset file (--preset-file), 0 when it is current",
    )
    p.add_argument("--out-dir", default=DEFAULT_DIR,
                   help=f"directory of the report (default: {DEFAULT_DIR})")
    p.add_argument("--preset-file",
                   help="with --check: the preset to compare with (default: "
                   "config/<the report's preset>.yaml)")
    p.add_argument("--preset", default="custom", help="name of the preset (report title)")
    p.add_argument(
        "--quality-datasets", nargs="*", default=[],
        help="datasets on which to check the W2 target ('none' for no check)",
    )
    p.add_argument(
        "--quality-factor", type=float, default=2.0,
        help="target: best W2 <= factor x W2 of independent draws",
    )
    p.add_argument("--result", help="JSON file for the settings and the result of this job "
                   "(required unless --check)")
    return p


def check(out_dir: str, preset_file: str | None) -> dict:
    """Compare the report in ``out_dir`` with this checkout; raise when it is stale."""
    from sfbench import provenance

    stamp_path = Path(out_dir) / provenance.PROVENANCE_FILE
    if not stamp_path.is_file():
        raise SfbenchError(f"{stamp_path} not found: no report, or one built before reports "
                           "were stamped; rebuild it with the pipeline")
    recorded = json.loads(stamp_path.read_text())
    preset_file = preset_file or f"config/{recorded['preset']}.yaml"
    if not Path(preset_file).is_file():
        raise SfbenchError(f"preset file {preset_file} not found (give --preset-file)")
    reasons = provenance.stale(recorded, preset_file)
    libraries = provenance.library_versions()
    for name, version in recorded.get("libraries", {}).items():
        if libraries.get(name) != version:
            print(f"note: {name} {libraries.get(name)} here, {version} in the report "
                  "(numbers may differ in the last digits)", file=sys.stderr)
    summary = (f"report {out_dir} (commit {recorded.get('git_commit', '?')[:12]}, preset "
               f"{recorded['preset']})")
    if reasons:
        raise SfbenchError(f"{summary} is stale:\n  " + "\n  ".join(reasons)
                           + "\nrerun the pipeline to rebuild it")
    print(f"{summary} is current for this checkout's code and {preset_file}")
    return {"command": "report", "settings": {"check": True, "out_dir": out_dir,
                                              "preset_file": preset_file},
            "result": {"stale": False}}


def run(args) -> dict:
    if args.check:
        return check(args.out_dir, args.preset_file)
    if not (args.results or args.results_dir) or not args.result:
        raise SfbenchError("give --results or --results-dir, and --result (or --check)")
    from sfbench.report.build import build_report

    if args.results:
        paths = args.results
    else:
        root = Path(args.results_dir)
        if not root.is_dir():
            raise SfbenchError(f"results directory not found: {root}")
        out = Path(args.out_dir).resolve()
        paths = sorted(
            str(p) for p in root.rglob("*.json")
            if out not in p.resolve().parents and p.name != "metrics.json"
        )
    quality = [d for d in args.quality_datasets if d != "none"]
    try:
        summary = build_report(
            paths, args.out_dir, preset=args.preset, config_hash=args.config_hash,
            quality_datasets=quality, quality_factor=args.quality_factor,
        )
    except ValueError as err:
        raise SfbenchError(str(err)) from None
    outputs = summary.pop("outputs")
    return {
        "command": "report",
        "settings": {
            "preset": args.preset,
            "out_dir": args.out_dir,
            "n_inputs": len(paths),
            "quality_datasets": quality,
            "quality_factor": args.quality_factor,
        },
        "result": summary,
        "outputs": outputs,
    }
