"""The SLURM profile plans every training and sampling job of the gpu preset with a GPU.

A dry run (``-n``) needs no cluster: Snakemake prints each planned job with a
``resources:`` line holding the resources it would submit with, after the
profile's ``set-resources`` and ``default-resources`` are applied -- the
same values the SLURM executor turns into sbatch flags (``gpu`` ->
``--gpus``, ``cpus_per_task``, ``mem_mb``, ``runtime``).
"""

import subprocess

import pytest
import yaml
from pipeline_helpers import REPO, copy_external_models, planned_jobs, snakemake_bin

# every job that trains or samples a network on the gpu preset
GPU_RULES = ("train", "sweep", "sweep_no_nll", "classifier", "image_reference", "nll")


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm-dry-run")
    proc = subprocess.run(
        [snakemake_bin(), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--profile", str(REPO / "profiles" / "slurm"), "-n",
         "--configfile", str(REPO / "config" / "gpu.yaml")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return planned_jobs(proc.stdout + proc.stderr)


def test_every_training_and_sampling_job_requests_a_gpu(dry_run):
    from sfbench.pipeline import JobPlan

    counts = JobPlan(yaml.safe_load((REPO / "config" / "gpu.yaml").read_text())).job_counts()
    expected = {rule: counts[rule] for rule in GPU_RULES if rule in counts}
    by_rule: dict[str, list[dict]] = {}
    for rule, resources in dry_run:
        by_rule.setdefault(rule, []).append(resources)
    for rule, n in expected.items():
        assert len(by_rule.get(rule, [])) == n, f"{rule}: {len(by_rule.get(rule, []))} jobs"
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    gpu_rules = {r for r, res in profile["set-resources"].items() if res.get("gpu")}
    assert set(GPU_RULES) <= gpu_rules
    for rule in gpu_rules & by_rule.keys():
        for resources in by_rule[rule]:
            assert resources.get("gpu") == "1", f"{rule} planned without a GPU: {resources}"
            assert resources.get("cpus_per_task") == str(
                profile["set-resources"][rule]["cpus_per_task"])


def test_cpu_only_jobs_request_no_gpu(dry_run):
    cpu_jobs = [(r, res) for r, res in dry_run if r in ("data", "reference", "report")]
    assert cpu_jobs
    assert all("gpu" not in res for _, res in cpu_jobs)


def test_a_training_job_given_several_gpus_runs_one_process_per_gpu(tmp_path):
    """`--set-resources train:gpu=2` asks SLURM for two GPUs and starts the job under
    torchrun with two processes (sfbench.distributed); other jobs stay one process."""
    copy_external_models(tmp_path)
    proc = subprocess.run(
        [snakemake_bin(), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--profile", str(REPO / "profiles" / "slurm"), "-n", "--set-resources", "train:gpu=2",
         "--configfile", str(REPO / "config" / "smoke.yaml")],
        capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    trains = [r for rule, r in planned_jobs(out) if rule == "train"]
    assert trains and all(r.get("gpu") == "2" for r in trains)
    commands = [line for line in out.splitlines() if " -m sfbench " in line]
    launched = [c for c in commands if " train --method " in c]
    assert len(launched) == len(trains)
    assert all("-m torch.distributed.run --standalone --nproc-per-node 2 -m sfbench" in c
               for c in launched)
    others = [c for c in commands if c not in launched]
    assert others and not any("torch.distributed.run" in c for c in others)
