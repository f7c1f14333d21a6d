"""Counting network evaluations (NFE) by wrapping the model.

NFE is what a sampler costs, and the benchmark compares solvers at equal
NFE, so it is counted at the model boundary and never inferred from the
step count (an adaptive solver's count is not known in advance, and a
solver that silently re-evaluates would otherwise go unnoticed).
"""

from __future__ import annotations

from torch import Tensor

from sfbench.model import PathModel
from sfbench.paths import Prediction, Schedule


class CountingModel:
    """A path model that counts its ``predict`` calls.

    One call on a batch is one function evaluation, whatever the batch size.

    Attributes:
        model: the wrapped path model.
        nfe: number of ``predict`` calls so far.
    """

    def __init__(self, model: PathModel):
        self.model = model
        self.nfe = 0

    @property
    def schedule(self) -> Schedule:
        return self.model.schedule

    # The wrapped model's declared capabilities: a counted model is the same model.
    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.model.sample_shape

    @property
    def one_step(self) -> bool:
        return self.model.one_step

    @property
    def has_score(self) -> bool:
        return self.model.has_score

    def predict(self, x: Tensor, t: Tensor | float) -> Prediction:
        self.nfe += 1
        return self.model.predict(x, t)

    def reset(self) -> None:
        """Set the count back to zero."""
        self.nfe = 0
