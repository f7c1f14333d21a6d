"""The comparison report: tables and plots built from the pipeline's result files.

:func:`sfbench.report.build.build_report` reads the JSON records the jobs
write under ``results/`` (no tracking server involved) and writes
``results/report/``: ``report.md``, a self-contained ``report.html``, the
tables as CSV, the figures as PNG, ``metrics.json`` and ``curves.csv`` --
exactly the files of :mod:`sfbench.report.manifest`. Its metrics are those
of the registry :mod:`sfbench.eval.metrics`.

``results`` loads the records, ``tables`` computes the tables (``heldout``: the
held-out figure a best-of table reports for a cell chosen on the selection
seed; ``answers``: the best method x solver per NFE budget), ``plots`` and
``decomposition`` draw the figures, ``sections`` lays out the text,
``render`` turns blocks into Markdown and HTML, ``build`` assembles.
"""
