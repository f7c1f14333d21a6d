"""Networks only: they map (x, t) to a tensor shaped like x and know no diffusion maths."""

from sfbench.models.mlp import MLP, SinusoidalEmbedding
from sfbench.models.presets import default_network, network_for
from sfbench.models.unet import UNet

__all__ = ["MLP", "SinusoidalEmbedding", "UNet", "default_network", "network_for"]
