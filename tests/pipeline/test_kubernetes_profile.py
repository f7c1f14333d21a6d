"""The Kubernetes profile: every job a pod, every file an object in S3-compatible storage.

No cluster and no cloud: a local S3 endpoint (moto's server) stands in for
the bucket. The dry run plans the smoke preset, which has a job of every
rule, with profiles/kubernetes (what each pod would request, which paths its
command reads and writes; the gpu preset's 764 jobs take minutes of storage
queries to plan against a local server); a real
run of the smoke preset's data job, with the profile's storage settings and
the local executor, shows the files travel through the bucket.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess

import pytest
import yaml
from pipeline_helpers import REPO, copy_external_models, planned_jobs, snakemake_bin

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the dev extra")
boto3 = pytest.importorskip("boto3")
pytest.importorskip("snakemake_executor_plugin_kubernetes",
                    reason="pip install -e '.[kubernetes]'")
pytest.importorskip("snakemake_storage_plugin_s3", reason="pip install -e '.[kubernetes]'")

BUCKET = "sfbench-test"
GPU_RULES = ("train", "sweep", "sweep_no_nll", "classifier", "image_reference", "nll")
# command-line flags whose value is a file or directory of the job
PATH_FLAGS = ("--data", "--pairs", "--model", "--config", "--classifier", "--fid-features",
              "--out", "--result", "--plot", "--nll-result", "--out-dir", "--results")


@pytest.fixture(scope="module")
def s3():
    """(endpoint URL, environment with its made-up credentials) of a local S3 server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    credentials = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                   "AWS_DEFAULT_REGION": "us-east-1"}
    client(url, credentials).create_bucket(Bucket=BUCKET)
    yield url, {**os.environ, **credentials}
    server.stop()


def client(url: str, env: dict):
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        region_name=env["AWS_DEFAULT_REGION"])


def storage_flags(url: str, prefix: str) -> list[str]:
    # last on the command line: the storage settings take several values each
    return ["--default-storage-prefix", f"s3://{BUCKET}/{prefix}",
            "--storage-s3-endpoint-url", url]


def upload_external_models(url: str, env: dict, workdir, prefix: str) -> None:
    """The preset's external models where a user of the profile keeps them: in the checkout
    Snakemake starts from (the plan reads their spec) and in the bucket at the same relative
    path (a pod reads them from there, like every input)."""
    s3 = client(url, env)
    for relative in copy_external_models(workdir):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{relative}",
                      Body=(workdir / relative).read_bytes())


def smoke_job_counts() -> dict[str, int]:
    from sfbench.pipeline import JobPlan

    return JobPlan(yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())).job_counts()


@pytest.fixture(scope="module")
def dry_run(s3, tmp_path_factory) -> str:
    url, env = s3
    workdir = tmp_path_factory.mktemp("kubernetes-dry-run")
    upload_external_models(url, env, workdir, "plan")
    proc = subprocess.run(
        [snakemake_bin(), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--profile", str(REPO / "profiles" / "kubernetes"), "-n",
         "--configfile", str(REPO / "config" / "smoke.yaml"), *storage_flags(url, "plan")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_every_job_is_planned_and_gpu_jobs_request_nvidia_gpus(dry_run):
    counts = smoke_job_counts()
    assert set(GPU_RULES) <= counts.keys()
    jobs = planned_jobs(dry_run)
    for rule, n in counts.items():
        if rule != "total":
            assert sum(r == rule for r, _ in jobs) == n, rule
    for rule, resources in jobs:
        if rule in GPU_RULES:
            assert resources.get("gpu") == "1", (rule, resources)
            # the plugin refuses a GPU request without a manufacturer
            assert resources.get("gpu_manufacturer") == "nvidia", (rule, resources)
        elif rule in ("data", "reference", "report", "decompose"):
            assert "gpu" not in resources, (rule, resources)


def test_every_job_reads_and_writes_local_copies_of_storage_objects(dry_run):
    """A pod has no shared file system: a flag naming a plan path (results/...) instead
    of Snakemake's local copy of the object would read or write nothing."""
    commands = re.findall(r"^Shell command: (.*)$", dry_run, re.MULTILINE)
    assert len(commands) == smoke_job_counts()["total"]
    for command in commands:
        tokens = command.split()
        for flag, value in zip(tokens, tokens[1:], strict=False):
            if flag in PATH_FLAGS:
                assert value.startswith(".snakemake/storage/s3/"), (flag, value, command)


def test_a_job_runs_with_its_files_in_object_storage(s3, tmp_path):
    url, env = s3
    upload_external_models(url, env, tmp_path, "run")
    proc = subprocess.run(
        [snakemake_bin(), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--cores", "1", "--configfile", str(REPO / "config" / "smoke.yaml"),
         "--default-storage-provider", "s3", *storage_flags(url, "run"),
         "--until", "results/data/8gaussians.json"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    bucket = client(url, env)
    keys = {o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET, Prefix="run/")["Contents"]}
    assert {"run/resources/data/8gaussians.npz", "run/results/data/8gaussians.json",
            "run/logs/data/8gaussians.log"} <= keys
    record = json.loads(bucket.get_object(Bucket=BUCKET, Key="run/results/data/8gaussians.json")
                        ["Body"].read())
    assert record["command"] == "data"
    # nothing landed beside the workflow as if the file system were shared
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()
