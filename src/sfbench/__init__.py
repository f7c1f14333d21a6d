"""sfbench: diffusion, score matching and flow matching compared on equal terms."""

__version__ = "0.1.0"
