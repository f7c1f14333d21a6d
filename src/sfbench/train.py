"""The training loop shared by every method.

AdamW, linear learning-rate warm-up then cosine decay, gradient clipping,
EMA of the weights, bf16 autocast on CUDA. Batches, t and noise come from
seeded generators (one per micro-batch, :mod:`sfbench.distributed`) whose states
are checkpointed, so a resumed run ends with the same weights as an
uninterrupted one (bit-identical on CPU). Under ``torchrun`` the micro-batches
are spread over the processes (DistributedDataParallel) and the weights are
those of a one-process run of the same settings.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sfbench import distributed
from sfbench.accel import deterministic_settings, maybe_compile, resolve_device
from sfbench.checkpoint import (
    CHECKPOINT_NAME,
    build_model,
    load_file,
    network_sample_shape,
    rng_states,
    save_atomic,
    set_rng_states,
)
from sfbench.errors import NonFiniteLossError
from sfbench.losses import training_loss
from sfbench.model import NetworkModel
from sfbench.models import default_network
from sfbench.models.presets import with_time_embed_scale


@dataclass
class TrainConfig:
    """Every setting that shapes a trained model (all written to its result file)."""

    method: str = "rectified_flow"
    seed: int = 0
    steps: int = 3000
    batch_size: int = 512  # the global batch of one optimizer step
    # Pieces the batch is drawn and back-propagated in, each from its own random
    # stream: gradient accumulation in one process, or split over torchrun's processes.
    micro_batches: int = 1
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    lr_decay: str = "cosine"  # "cosine" to 0.1 x lr, or "constant"
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    checkpoint_every: int = 500
    log_every: int = 100
    # The network spec: its "dim" (vectors) or "shape" (images) fixes the data it takes.
    network: dict = field(default_factory=lambda: default_network((2,)))
    schedule: dict = field(default_factory=dict)  # overrides of the method's schedule
    device: str = "auto"  # "auto", "cpu" or "cuda"
    precision: str = "auto"  # "auto" (bf16 autocast on CUDA), "fp32" or "bf16"
    compile: bool = False  # torch.compile the network for the training steps (GPU runs)
    deterministic: bool = False  # deterministic kernels (sfbench.accel); slower on CUDA

    def __post_init__(self):
        self._check_types()
        for name in ("steps", "batch_size", "micro_batches", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("lr", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.batch_size % self.micro_batches:
            raise ValueError(f"batch_size {self.batch_size} is not a multiple of "
                             f"micro_batches {self.micro_batches}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise ValueError("warmup_steps and weight_decay must be non-negative")
        if self.lr_decay not in ("cosine", "constant"):
            raise ValueError(f"lr_decay must be 'cosine' or 'constant', got {self.lr_decay!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        # The time embedding's scale follows the method's time axis (step index or
        # continuous t); fixed here so the saved network spec records it.
        self.network = with_time_embed_scale(self.network, self.method, self.schedule)

    def _check_types(self) -> None:
        # A YAML value such as 1e-3 (no dot) reads as text; say so here rather
        # than fail later inside the optimizer with a bare TypeError.
        for f in fields(self):
            value, kind = getattr(self, f.name), f.type
            expected = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
                        "dict": (dict,)}.get(kind)
            if expected is None:
                continue
            if isinstance(value, bool) and kind in ("int", "float"):
                expected = ()
            if not isinstance(value, expected):
                hint = " (YAML reads 1e-3 as text; write 1.0e-3)" if isinstance(value, str) else ""
                raise ValueError(f"{f.name} must be of type {kind}, got {value!r}{hint}")

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown training setting(s) {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(known))}"
            )
        return cls(**values)


@dataclass
class TrainResult:
    model: NetworkModel  # the EMA model, in eval mode
    loss_history: list[tuple[int, float]]
    final_loss: float
    wall_seconds: float  # of all sessions of this run, resumed ones included
    resumed_from_step: int
    device: str
    precision: str


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the base learning rate at optimizer step ``step``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_decay == "constant":
        return 1.0
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay with warm-up, min(decay, (1 + step) / (10 + step)).

    A constant 0.999 would still give the random initial weights a share of
    0.999^n of the average after n steps (22 % after 1500); short CPU budgets
    need the average to forget them.
    """
    return min(decay, (1.0 + step) / (10.0 + step))


def _resolve_device(cfg: TrainConfig) -> tuple[torch.device, bool]:
    dev = resolve_device(cfg.device)
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and dev == "cuda")
    return torch.device(dev), bf16


def _as_training_array(values, what: str, network: dict, device) -> torch.Tensor:
    array = torch.as_tensor(np.asarray(values), dtype=torch.float32, device=device)
    shape = network_sample_shape(network)
    if array.dim() < 2 or tuple(array.shape[1:]) != shape:
        raise ValueError(
            f"{what} has shape {list(array.shape)}, "
            f"the network expects [N, {', '.join(map(str, shape))}]"
        )
    if not torch.isfinite(array).all():
        raise ValueError(f"{what} holds NaN or Inf values")
    return array


def train(
    cfg: TrainConfig,
    train_data: np.ndarray | torch.Tensor,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    noise: np.ndarray | torch.Tensor | None = None,
) -> TrainResult:
    """Train ``cfg.method`` on ``train_data``: ``[N, d]`` vectors or ``[N, C, H, W]`` images.

    The per-sample shape must be the network's (``network_sample_shape``).
    ``noise`` (same shape) is the noise paired with each row, for methods
    trained on given pairs (reflow, distill): batches then draw (noise, data)
    rows together. Resumes from ``checkpoint_dir`` if it holds a checkpoint
    of the same settings. Under ``torchrun`` every process calls this; only
    the first writes checkpoints.
    """
    device, bf16 = _resolve_device(cfg)
    procs = distributed.processes()
    shards = procs.shards(cfg.micro_batches)  # before joining: a bad split fails at once
    device = distributed.join(procs, device.type) or device
    data = _as_training_array(train_data, "training data", cfg.network, device)
    if noise is not None:
        noise = _as_training_array(noise, "paired noise", cfg.network, device)
        if noise.shape[0] != data.shape[0]:
            raise ValueError(f"{noise.shape[0]} noise rows for {data.shape[0]} data rows")

    if cfg.deterministic:
        deterministic_settings(True)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.method, cfg.schedule, cfg.network).to(device)
    net = model.net  # the weights: saved, averaged, clipped (never the compiled wrapper)
    ema = copy.deepcopy(net).requires_grad_(False)
    # The fused CUDA kernel updates every parameter in one launch; on the CPU
    # the default (foreach) implementation is the fast one.
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            fused=True if device.type == "cuda" else None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    gens = {k: torch.Generator(device=device).manual_seed(
        distributed.micro_batch_seed(cfg.seed + 1, k)) for k in shards}
    gen = gens[shards[0]]  # checkpointed with the global RNG states

    step, history, window, earlier_seconds = 0, [], [], 0.0
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    state = load_file(ckpt_path, "checkpoint") if ckpt_path and ckpt_path.exists() else None
    if state is not None and state["step"] >= cfg.steps:
        # A finished run asked to train again (a forced rerun, say after a code
        # change) starts afresh: resuming would hand back the old weights.
        state = None
    if state is not None:
        # checkpoints from before micro-batches existed had one
        if {"micro_batches": 1, **state.get("config", {})} != asdict(cfg):
            raise ValueError(
                f"checkpoint {ckpt_path} was written with different settings; "
                "delete it or use another --checkpoint-dir"
            )
        net.load_state_dict(state["net"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        set_rng_states(state["rng"], gen)
        for k, value in state.get("micro_batch_generators", {}).items():
            if int(k) in gens:
                gens[int(k)].set_state(value)
        step, history, window = state["step"], state["history"], state["window"]
        earlier_seconds = state["wall_seconds"]
    resumed_from = step

    def save_checkpoint():
        streams = {}  # every micro-batch's generator, from whichever process draws it
        for part in distributed.gather({str(k): g.get_state() for k, g in gens.items()}, procs):
            streams.update(part)
        if not procs.main:
            return
        save_atomic(
            {
                "config": asdict(cfg),
                "step": step,
                "net": net.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "rng": rng_states(gen),
                "micro_batch_generators": streams,
                "history": history,
                "window": window,  # losses since the last log line, so logs resume too
                "wall_seconds": earlier_seconds + time.perf_counter() - start,
            },
            ckpt_path,
        )

    def autocast():
        if not bf16:  # an idle autocast context still costs time on every step
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    # The wrappers (DDP, compiled) share their parameters with `net`; the loss calls them.
    parallel = (torch.nn.parallel.DistributedDataParallel(net) if procs.world_size > 1
                else None)
    model.net = maybe_compile(parallel or net, cfg.compile)
    micro_size = cfg.batch_size // cfg.micro_batches
    params, ema_params = list(net.parameters()), list(ema.parameters())
    # Reading a loss back from a GPU waits for every queued kernel, so on CUDA
    # the losses are read (and checked) once per log line and before every
    # checkpoint; on the CPU reading is free and each step is checked at once.
    read_each_step = device.type == "cpu"
    pending: list[torch.Tensor] = []  # losses of steps not yet read back

    def read_losses():
        values = distributed.mean_over_processes(torch.stack(pending).float(), procs).tolist()
        first = step - len(values) + 1
        pending.clear()
        for i, value in enumerate(values):
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"{cfg.method}: loss is {value} at step {first + i}; training stopped "
                    "(lower the learning rate or check the data)"
                )
        window.extend(values)

    start = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=step, disable=not (progress and procs.main),
               desc=f"train {cfg.method}")
    model.train()
    while step < cfg.steps:
        opt.zero_grad(set_to_none=True)
        losses = []
        for i, k in enumerate(shards):
            idx = torch.randint(data.shape[0], (micro_size,), generator=gens[k], device=device)
            # DDP averages gradients over processes at the last backward of the step only
            last = i == len(shards) - 1
            with contextlib.nullcontext() if parallel is None or last else parallel.no_sync():
                with autocast():
                    loss = training_loss(model, data[idx], gens[k],
                                         None if noise is None else noise[idx])
                (loss / len(shards)).backward()
            losses.append(loss.detach())
        pending.append(losses[0] if len(losses) == 1 else torch.stack(losses).mean())
        step += 1
        saving = ckpt_path is not None and (step % cfg.checkpoint_every == 0 or step == cfg.steps)
        log_line = step % cfg.log_every == 0 or step == cfg.steps
        if read_each_step or log_line or saving:
            read_losses()  # raises before a step on a non-finite loss reaches the weights
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        with torch.no_grad():  # one fused launch for every tensor, not one per tensor
            torch._foreach_lerp_(ema_params, params, 1.0 - ema_decay_at(step - 1, cfg.ema_decay))
        if log_line:
            history.append((step, sum(window) / len(window)))
            window.clear()
            bar.set_postfix(loss=f"{history[-1][1]:.4f}")
        bar.update(1)
        if saving:
            save_checkpoint()
    bar.close()

    model.net = net
    net.load_state_dict(ema.state_dict())
    return TrainResult(
        model=model.eval(),
        loss_history=history,
        final_loss=history[-1][1] if history else float("nan"),
        wall_seconds=earlier_seconds + time.perf_counter() - start,
        resumed_from_step=resumed_from,
        device=str(device),
        precision="bf16" if bf16 else "fp32",
    )
