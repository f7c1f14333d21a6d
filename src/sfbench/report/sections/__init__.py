"""The report's sections, each a list of render blocks built from :class:`Results`.

- :mod:`.common`: cell formatting (mean ± std), labels, CSV writing, sample files;
- :mod:`.protocol`: where the report came from, the settings behind every
  number, package versions;
- :mod:`.datasets`: one section per dataset (vector: summary, metric-vs-NFE
  plots, samples, trajectories; image: summary, bits/dim, plots, sample grids);
- :mod:`.comparisons`: the quality target, the Gaussian baseline, every
  method's solvers and step counts;
- :mod:`.decomposition`: where the error comes from, and the flows' straightness.

:mod:`sfbench.report.build` puts them in order and writes the files.
"""
