"""The comparison report: tables and plots built from the pipeline's result files.

:func:`sfbench.report.build.build_report` reads the JSON records the jobs
write under ``results/`` (no tracking server involved) and writes
``results/report/``: ``report.md``, a self-contained ``report.html``, the
tables as CSV, the figures as PNG, ``metrics.json`` and ``curves.csv``.
"""
