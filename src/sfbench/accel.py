"""Accelerator settings: reproducible kernels, optional ``torch.compile``, pinned-memory batches.

Determinism on CUDA needs three things besides seeds (PyTorch, "Reproducibility"):

- ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in the environment, before the first
  cuBLAS call, or ``torch.use_deterministic_algorithms(True)`` raises on
  cuBLAS matmuls (CUDA >= 10.2 picks its reduction order per workspace);
- ``torch.use_deterministic_algorithms(True)``: kernels without a
  deterministic implementation raise instead of silently varying;
- ``torch.backends.cudnn.benchmark = False`` (autotuning picks kernels by
  timing, so by load) and ``cudnn.deterministic = True``.

Deterministic kernels are slower (scatter/index_add, some convolutions), so
the default is off and a run that needs bit-identical reruns asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch import Tensor, nn

CUBLAS_WORKSPACE = ":4096:8"


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for a ``--device`` value: ``auto`` is CUDA where there is one;
    an explicit ``cuda`` without one is an error naming it."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available")
    return device


def deterministic_settings(enabled: bool) -> dict:
    """Switch deterministic kernels on or off for this process; the settings now in force.

    Sets ``CUBLAS_WORKSPACE_CONFIG`` only if it is unset (a user's own value
    wins) and only when enabling; it must happen before CUDA is first used.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.benchmark = not enabled
    torch.backends.cudnn.deterministic = enabled
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def maybe_compile(module: nn.Module, enabled: bool, **options) -> nn.Module:
    """``torch.compile(module, **options)`` when enabled, else the module unchanged.

    The compiled module shares its parameters with ``module``, so optimizers,
    EMA and ``state_dict`` keep working on the original; compile only what is
    called (``model.net``), not the object whose weights are saved. Compiling
    is lazy: an unsupported backend shows at the first call, not here.
    """
    if not enabled:
        return module
    if not hasattr(torch, "compile"):
        raise RuntimeError(f"torch.compile needs torch >= 2.0, this is {torch.__version__}")
    return torch.compile(module, **options)


def pinned_batches(
    data: Tensor, batch_size: int, device: torch.device | str, generator: torch.Generator,
    steps: int,
) -> Iterator[Tensor]:
    """``steps`` random batches of ``data`` (held on the CPU) delivered on ``device``.

    On CUDA each batch is gathered into page-locked memory and copied with
    ``non_blocking=True``, so the copy overlaps the previous step's kernels;
    on the CPU the batches are the gathered rows themselves. Indices come
    from ``generator`` (a CPU generator), so the batches do not depend on the
    device. For data that fits in device memory, moving it there once (as
    :func:`sfbench.train.train` does) is faster still; this is for data that
    does not.
    """
    if batch_size < 1 or steps < 0:
        raise ValueError(f"batch_size must be >= 1 and steps >= 0, got {batch_size}, {steps}")
    if data.device.type != "cpu":
        raise ValueError(f"pinned_batches takes data on the CPU, got {data.device}")
    device = torch.device(device)
    pin = device.type == "cuda"
    for _ in range(steps):
        idx = torch.randint(data.shape[0], (batch_size,), generator=generator)
        batch = data[idx]
        if pin:
            batch = batch.pin_memory().to(device, non_blocking=True)
        yield batch
