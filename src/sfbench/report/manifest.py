"""The files the report writes, named in one place.

The report builder writes exactly these; the workflow declares them as the
report job's outputs and DVC tracks them, both from this list (through the
job plan), so the three cannot drift. Figure names follow the metric
registry: one ``{metric}_vs_nfe_{dataset}.png`` per metric that applies to
the dataset's kind of data.
"""

from __future__ import annotations

from dataclasses import dataclass

from sfbench.eval.metrics import IMAGE, VECTOR, metrics_for

#: Report-level files besides the tables and figures (relative to the report directory).
DOCUMENTS = ("report.md", "provenance.json", "metrics.json", "curves.csv")
#: The HTML page (DVC-cached: it embeds every figure).
HTML = "report.html"


@dataclass(frozen=True)
class ReportContents:
    """What a report covers: the datasets and methods of a preset's results."""

    datasets: tuple[str, ...]  # vector (2-D) datasets
    image_datasets: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()  # every method with a model, 2-D, image and paired
    image_methods: tuple[str, ...] = ()
    decompose_datasets: tuple[str, ...] = ()

    def tables(self) -> list[str]:
        names = ["summary", "headline", "cells", "best_by_solver", "quality", "solvers"]
        if self.image_datasets:
            names += ["baseline", "bits"]
        if self.decompose_datasets:
            names += ["decomposition", "flows"]
        return (
            [f"tables/{name}.csv" for name in names]
            + [f"tables/summary_{d}.csv" for d in (*self.datasets, *self.image_datasets)]
            + [f"tables/answers_{d}.csv" for d in (*self.datasets, *self.image_datasets)]
            + [f"tables/grid_{m}.csv" for m in dict.fromkeys(self.methods)]
        )

    def figures(self) -> list[str]:
        vector = [m.name for m in metrics_for(VECTOR)]
        image = [m.name for m in metrics_for(IMAGE)]
        names = [f"{m}_vs_nfe" for m in vector] + ["samples", "trajectories"]
        figures = [f"figures/{n}_{d}.png" for n in names for d in self.datasets]
        figures += [f"figures/{m}_vs_nfe_{d}.png" for m in image for d in self.image_datasets]
        figures += [f"figures/samples_{d}_{m}.png"
                    for d in self.image_datasets for m in self.image_methods]
        figures += [f"figures/decomposition_{d}.png" for d in self.decompose_datasets]
        return figures

    def files(self) -> list[str]:
        """Every file of the report directory, HTML included."""
        return [*DOCUMENTS, HTML, *self.tables(), *self.figures()]
