"""The sampling sweep as library code; the sweep and reference commands only parse and write.

- :mod:`~sfbench.sweep.cells`: :class:`Cell`, its key (``euler/steps8``) and samples-file
  name, and the native-settings column;
- :mod:`~sfbench.sweep.config`: :class:`SweepConfig` (SWEEP.yaml) and its cells;
- :mod:`~sfbench.sweep.flags`: the same settings as command-line flags (by hand);
- :mod:`~sfbench.sweep.run`: :func:`run_sweep`, the loop over cells and noise seeds
  (selection seed, held-out seeds);
- :mod:`~sfbench.sweep.record`: :class:`CellResult` / :class:`SweepRecord`, the JSON record;
- :mod:`~sfbench.sweep.reference`: the metrics' noise floor (independent data draws).

Imports nothing heavy here: the command-line parser is built from ``flags``.
"""
