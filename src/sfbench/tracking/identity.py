"""Where a run comes from: the code (git state) and the process (stale runs).

A process killed with SIGKILL (or by the OOM killer, or a power cut) cannot
close its run. Every run is tagged ``sfbench.process`` (host, pid and the
process's start time, so a reused pid is not mistaken for it), and every job
that starts marks FAILED the RUNNING runs of its experiment whose process on
this host is gone (:func:`fail_stale_runs`); a rerun of the killed job then
reuses its run. No run stays RUNNING once any job of the experiment has run
again on that host.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from sfbench.tracking.store import retry

PROCESS_TAG = "sfbench.process"


#: Tracked files the pipeline itself rewrites (the committed report under results/):
#: a run's own outputs do not make its code "uncommitted".
PIPELINE_OUTPUTS = ("results",)


def git_state(cwd: str | os.PathLike | None = None) -> dict[str, str]:
    """The commit checked out in ``cwd`` and whether tracked files other than the
    pipeline's outputs differ from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"git_commit": "unknown"}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
             *(f":(top,exclude){path}" for path in PIPELINE_OUTPUTS)],
            cwd=cwd, capture_output=True, text=True, timeout=30,
        )
        return {
            "git_commit": commit.stdout.strip(),
            "git_dirty": str(bool(dirty.stdout.strip())).lower(),
        }
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown"}


def _start_ticks(pid: int) -> str:
    """Start time of process ``pid`` in clock ticks since boot ('?' where /proc is absent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counted after "comm)"


def process_identity(pid: int | None = None) -> str:
    """``host:pid:start`` of a process, the value of the ``sfbench.process`` tag."""
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def process_gone(identity: str) -> bool:
    """True only when the process is known to have ended (never for another host's)."""
    try:
        host, pid, start = identity.rsplit(":", 2)
        pid = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        pass
    return start != "?" and _start_ticks(pid) != start  # the pid now names another process


def fail_stale_runs(client, experiment_id: str) -> list[str]:
    """Mark FAILED the RUNNING runs whose process has died without closing them."""
    runs = retry(
        client.search_runs,
        [experiment_id],
        filter_string="attributes.status = 'RUNNING'",
        max_results=5000,
    )
    stale = [r.info.run_id for r in runs if process_gone(r.data.tags.get(PROCESS_TAG, ""))]
    for run_id in stale:
        retry(client.set_tag, run_id, "sfbench.end", "process gone (killed without cleanup)")
        retry(client.set_terminated, run_id, "FAILED")
    return stale
