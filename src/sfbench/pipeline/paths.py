"""Every file the workflow writes, named once.

Patterns take Snakemake's wildcards (``{dataset}``, ``{method}``, ``{seed}``,
``{name}``); :func:`fill` fills them for one job. Rules, the report job's
inputs, ``dvc.yaml`` and the tests all read these, so a path is never
restated.
"""

from __future__ import annotations

#: One trained model: the wildcards of every per-model job.
MODEL_JOB = "{dataset}/{method}/seed{seed}"

DATA = "resources/data/{dataset}.npz"
DATA_RECORD = "results/data/{dataset}.json"
REFERENCE = "results/reference/{dataset}.json"
REFERENCE_FEATURES = "results/reference/{dataset}_features.npz"  # image test-split features
CLASSIFIER = "results/models/fid_classifier/{dataset}.pt"
CLASSIFIER_RECORD = "results/train/fid_classifier/{dataset}.json"
#: Settings files the jobs read (``{kind}``: one of JOB_CONFIG_KINDS; ``{name}``: JobPlan's).
JOB_CONFIG = "resources/{kind}_config/{name}.yaml"
JOB_CONFIG_KINDS = ("train", "sweep")

MODEL = f"results/models/{MODEL_JOB}.pt"
TRAIN_RECORD = f"results/train/{MODEL_JOB}.json"
CHECKPOINTS = f"checkpoints/{MODEL_JOB}"  # resumable state, kept apart from the outputs
PAIRS = f"results/pairs/{MODEL_JOB}.npz"
PAIRS_RECORD = f"results/pairs/{MODEL_JOB}.json"
SWEEP = f"results/sweep/{MODEL_JOB}.json"
SAMPLES = f"results/samples/{MODEL_JOB}.npz"
PLOT = f"results/plots/{MODEL_JOB}.png"
NLL = f"results/nll/{MODEL_JOB}.json"
DECOMPOSE = f"results/decompose/{MODEL_JOB}.json"

REPORT_DIR = "results/report"
REPORT_RESULT = f"{REPORT_DIR}/result.json"  # the report job's own record

#: Every per-job output pattern (the report's files come from its manifest).
JOB_OUTPUTS = (DATA, DATA_RECORD, REFERENCE, REFERENCE_FEATURES, CLASSIFIER, CLASSIFIER_RECORD,
               *(JOB_CONFIG.replace("{kind}", kind) for kind in JOB_CONFIG_KINDS),
               MODEL, TRAIN_RECORD, CHECKPOINTS, PAIRS, PAIRS_RECORD, SWEEP, SAMPLES, PLOT, NLL,
               DECOMPOSE)


def directory(pattern: str) -> str:
    """The fixed directory a pattern's files lie under (up to its first wildcard)."""
    return pattern.split("{")[0].rsplit("/", 1)[0]


def log(stage: str, job: str = MODEL_JOB) -> str:
    return f"logs/{stage}/{job}.log"


def benchmark(stage: str, job: str = MODEL_JOB) -> str:
    return f"logs/benchmarks/{stage}/{job}.tsv"


def fill(pattern: str, **wildcards) -> str:
    return pattern.format(**wildcards)


def sweep_outputs(nll: bool) -> dict[str, str]:
    """The sweep job's outputs; ``nll``: it also writes the model's NLL record."""
    outputs = {"result": SWEEP, "samples": SAMPLES, "plot": PLOT}
    return {**outputs, "nll": NLL} if nll else outputs


def reference_outputs(features: bool) -> dict[str, str]:
    """The reference job's outputs; ``features``: also the cached FID features (images)."""
    return {"result": REFERENCE, "features": REFERENCE_FEATURES} if features else {
        "result": REFERENCE}
