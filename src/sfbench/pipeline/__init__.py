"""The workflow's job plan, in the package: what Snakemake runs for a preset.

| module | one concept |
|---|---|
| ``registries`` | what the plan asks the registries: data kind, FID extractor, method traits |
| ``validate`` | a preset's schema and cross-field checks, with registry names injected |
| ``paths`` | every output path pattern, once |
| ``plan`` | :class:`JobPlan`: the models of a preset, their jobs and files, the report's contents |
| ``settings`` | the training and sweep settings files jobs read |
| ``commands`` | each job's command-line flags and MLflow job key |
| ``jobs`` | a job's interpreter, launcher, global flags and code fingerprint (provenance) |
| ``dvc`` | ``dvc.yaml`` rendered from the plan (``python -m sfbench.pipeline.dvc``) |

The Snakefile and ``workflow/rules/*.smk`` only wire these into rules; the
tests plan the same jobs from :class:`JobPlan` without running Snakemake.
"""

from sfbench.pipeline.plan import REFLOW_CHAIN, Job, JobPlan, Model
from sfbench.pipeline.validate import InvalidConfig, validate_config

__all__ = ["REFLOW_CHAIN", "InvalidConfig", "Job", "JobPlan", "Model", "validate_config"]
