"""Data-parallel training: processes started by ``torchrun``, and micro-batches.

A training step's global batch (``TrainConfig.batch_size``) is drawn in
``micro_batches`` equal pieces, piece ``k`` from its own seeded random stream
(:func:`micro_batch_seed`: its rows, times and noise). The gradient of the step
is the mean over the pieces. How the pieces are spread over processes does
not change the step: one process computes them one after another (gradient
accumulation); under ``torchrun`` with W processes each computes
``micro_batches / W`` of them and DistributedDataParallel averages the
gradients (gloo on CPUs, NCCL on GPUs). A 2-process run therefore ends with
the weights of a 1-process run of the same settings, to float round-off
(``tests/test_distributed.py``). With one piece, the stream is the one every
single-process run has always used, so earlier models are unchanged.

``torchrun`` describes each process in the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``; see the torch.distributed docs); without it
this is one process of rank 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    """This process's place among the data-parallel processes of one training run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that writes files and logs (rank 0)."""
        return self.rank == 0

    def shards(self, micro_batches: int) -> range:
        """The micro-batches this process computes: a contiguous block of them."""
        if micro_batches % self.world_size:
            raise ValueError(
                f"micro_batches = {micro_batches} does not split over {self.world_size} "
                "processes: set it to a multiple of the process count"
            )
        per = micro_batches // self.world_size
        return range(self.rank * per, (self.rank + 1) * per)


def processes(environ=os.environ) -> Processes:
    """This process's rank, the process count and its local rank, as torchrun set them."""
    try:
        return Processes(int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1)),
                         int(environ.get("LOCAL_RANK", 0)))
    except ValueError as err:
        raise ValueError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers: {err}") from None


def join(procs: Processes, device_type: str) -> torch.device | None:
    """Join the process group of a multi-process run (once); its device on a GPU machine.

    Returns ``cuda:LOCAL_RANK`` for a CUDA run (one GPU per process), else None.
    """
    if procs.world_size == 1:
        return None
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    if device_type == "cuda":
        torch.cuda.set_device(procs.local_rank)
        return torch.device("cuda", procs.local_rank)
    return None


def micro_batch_seed(seed: int, k: int) -> int:
    """Seed of micro-batch ``k``'s random stream: ``seed`` itself for the first one
    (the stream of a single-batch run), an independent SeedSequence child for the others."""
    if k == 0:
        return seed
    return int(np.random.SeedSequence([seed, k]).generate_state(1, dtype=np.uint64)[0] >> 1)


def mean_over_processes(values: torch.Tensor, procs: Processes) -> torch.Tensor:
    """The element-wise mean of ``values`` over every process (itself when alone)."""
    if procs.world_size == 1:
        return values
    total = values.detach().clone()
    dist.all_reduce(total)  # gloo has no AVG: sum, then divide
    return total / procs.world_size


def gather(obj, procs: Processes) -> list:
    """``obj`` of every process, in rank order (a one-item list when alone)."""
    if procs.world_size == 1:
        return [obj]
    out = [None] * procs.world_size
    dist.all_gather_object(out, obj)
    return out
