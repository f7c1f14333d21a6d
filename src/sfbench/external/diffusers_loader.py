r"""A diffusers model directory as an sfbench path model.

The directory is what ``UNet2DModel.save_pretrained(dir)`` and
``scheduler.save_pretrained(dir)`` write (``config.json``, the weights,
``scheduler_config.json``), or a pipeline's layout with ``unet/`` and
``scheduler/`` (diffusers documentation, "Load pipelines": each component in
its own folder). The scheduler is read for what the network was trained on,
not for how to sample it: its betas (``beta_schedule`` or ``trained_betas``,
``num_train_timesteps``) become a :class:`~sfbench.paths.DDPMSchedule`
(:mod:`sfbench.paths.betas` recomputes them in float64), and its
``prediction_type`` the conversion to (x0, eps). Its sampling settings
(``timestep_spacing``, ``clip_sample``, ``thresholding``, ...) are ignored:
sfbench's solvers and grids take their place.

diffusers is optional: it is imported here only, and its absence is an error
that names the extra to install. Weights are read by ``from_pretrained``
(safetensors, or a ``.bin`` through ``torch.load(weights_only=True)``): no pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

from sfbench.errors import ExternalModelError
from sfbench.external.wrappers import DIFFUSERS_PREDICTIONS, DiscreteTimeModel
from sfbench.paths import DDPMSchedule

MODEL_CLASSES = ("UNet2DModel",)


def import_diffusers():
    try:
        import diffusers
    except ImportError:
        raise ExternalModelError(
            "loading a diffusers model needs the diffusers package: "
            'pip install -e ".[diffusers]"'
        ) from None
    return diffusers


def layout(directory: Path) -> tuple[Path, Path]:
    """(model folder, scheduler config file) of a diffusers directory, flat or pipeline."""
    for model_dir, sched_file in (
        (directory, directory / "scheduler_config.json"),
        (directory / "unet", directory / "scheduler" / "scheduler_config.json"),
    ):
        if (model_dir / "config.json").is_file() and sched_file.is_file():
            return model_dir, sched_file
    raise ExternalModelError(
        f"{directory} is not a diffusers model directory: expected config.json and "
        "scheduler_config.json in it (UNet2DModel.save_pretrained and "
        "scheduler.save_pretrained), or a pipeline's unet/ and scheduler/ folders"
    )


def _read_json(file: Path) -> dict:
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ExternalModelError(f"cannot read {file}: {err}") from None
    if not isinstance(data, dict):
        raise ExternalModelError(f"{file} is not a JSON object")
    return data


def _full_scheduler_config(diffusers, config: dict, file: Path) -> dict:
    """The config with the scheduler class's defaults filled in (older files lack keys)."""
    cls = getattr(diffusers, str(config.get("_class_name")), None)
    if cls is None or not hasattr(cls, "from_config"):
        return config
    try:
        return dict(cls.from_config(config).config)
    except Exception as err:  # diffusers' own refusal, e.g. an unknown beta_schedule
        raise ExternalModelError(f"{file}: diffusers cannot build its scheduler: {err}") from None


def schedule_of(config: dict, file: Path) -> tuple[DDPMSchedule, str]:
    """The DDPM schedule and diffusers ``prediction_type`` of a scheduler config."""
    where = f"{file} ({config.get('_class_name', 'scheduler')})"
    if "num_train_timesteps" not in config or not (
        "beta_schedule" in config or config.get("trained_betas") is not None
    ):
        raise ExternalModelError(
            f"{where} has no discrete beta schedule (beta_schedule or trained_betas and "
            "num_train_timesteps); continuous-noise schedulers (ScoreSdeVe, EDM) are "
            "not supported"
        )
    if config.get("rescale_betas_zero_snr"):
        raise ExternalModelError(f"{where}: rescale_betas_zero_snr (zero terminal SNR, "
                                 "alpha = 0 at the noise end) is not supported")
    if config.get("timestep_type", "discrete") != "discrete":
        raise ExternalModelError(f"{where}: timestep_type {config['timestep_type']!r} is "
                                 "not supported, only discrete timesteps")
    prediction = config.get("prediction_type", "epsilon")
    if prediction not in DIFFUSERS_PREDICTIONS:
        raise ExternalModelError(f"{where}: unknown prediction type {prediction!r}; valid: "
                                 f"{', '.join(DIFFUSERS_PREDICTIONS)}")
    try:
        if config.get("trained_betas") is not None:
            return DDPMSchedule(betas=config["trained_betas"]), prediction
        return DDPMSchedule(
            beta_start=float(config.get("beta_start", 1e-4)),
            beta_end=float(config.get("beta_end", 0.02)),
            num_steps=int(config["num_train_timesteps"]),
            beta_schedule=config.get("beta_schedule", "linear"),
        ), prediction
    except ValueError as err:
        raise ExternalModelError(f"{where}: {err}") from None


def _sample_shape(config: dict, file: Path) -> tuple[int, int, int]:
    size = config.get("sample_size")
    if isinstance(size, int):
        size = (size, size)
    if not (isinstance(size, list | tuple) and len(size) == 2):
        raise ExternalModelError(f"{file}: sample_size must be an integer or [height, width], "
                                 f"got {config.get('sample_size')!r}")
    return (int(config.get("in_channels", 3)), int(size[0]), int(size[1]))


def _check_model_config(config: dict, file: Path) -> None:
    name = config.get("_class_name")
    if name not in MODEL_CLASSES:
        raise ExternalModelError(f"{file}: model class {name!r} is not supported; "
                                 f"supported: {', '.join(MODEL_CLASSES)} (unconditional)")
    if config.get("time_embedding_type", "positional") != "positional":
        raise ExternalModelError(
            f"{file}: time_embedding_type {config['time_embedding_type']!r} takes noise "
            "levels, not timesteps; only 'positional' (integer timesteps) is supported")
    if config.get("num_class_embeds") or config.get("class_embed_type"):
        raise ExternalModelError(f"{file}: class-conditional UNet2DModel is not supported")


def load_diffusers(directory: str | Path) -> tuple[DiscreteTimeModel, dict]:
    """The path model of a diffusers directory and what the record says of it.

    Raises:
        ExternalModelError: not a diffusers directory, an unsupported model or
            scheduler, an unknown prediction type, unreadable weights, or no diffusers.
    """
    directory = Path(directory)
    model_dir, sched_file = layout(directory)
    model_config = _read_json(model_dir / "config.json")
    _check_model_config(model_config, model_dir / "config.json")
    diffusers = import_diffusers()
    sched_config = _full_scheduler_config(diffusers, _read_json(sched_file), sched_file)
    schedule, prediction = schedule_of(sched_config, sched_file)
    shape = _sample_shape(model_config, model_dir / "config.json")
    try:
        # low_cpu_mem_usage=False: its default True wants the accelerate package (a warning).
        net = diffusers.UNet2DModel.from_pretrained(str(model_dir), low_cpu_mem_usage=False)
    except Exception as err:  # missing or mismatched weights, a config diffusers refuses
        raise ExternalModelError(f"{model_dir}: diffusers could not load the model: {err}"
                                 ) from None
    out_channels = int(net.config.out_channels)
    learned = (out_channels == 2 * shape[0]
               and sched_config.get("variance_type") in ("learned", "learned_range"))
    if out_channels != shape[0] and not learned:
        raise ExternalModelError(
            f"{model_dir}: out_channels {out_channels} != in_channels {shape[0]} (and the "
            "scheduler's variance_type is not learned / learned_range)")
    net.eval().requires_grad_(False)
    model = DiscreteTimeModel(net, schedule, prediction, shape, learned_variance=learned)
    return model, {"scheduler": sched_config.get("_class_name"), "prediction": prediction,
                   "model_class": model_config["_class_name"]}
