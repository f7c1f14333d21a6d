"""Networks only: they map (x, t) to a tensor shaped like x and know no diffusion maths."""

from sfbench.models.mlp import MLP, SinusoidalEmbedding

__all__ = ["MLP", "SinusoidalEmbedding"]
