"""Models sfbench did not train, as path models: diffusers directories and plain PyTorch networks.

- :mod:`.spec`: the model spec file (YAML / JSON) and its validation;
- :mod:`.wrappers`: the path models around a discrete-time (diffusers) or a
  continuous-time network;
- :mod:`.diffusers_loader`: a diffusers directory (the only module that imports diffusers);
- :mod:`.torch_loader`: a ``module:function`` network with optional weights;
- :mod:`.load`: :func:`load_any_model`, the one dispatch the commands use.
"""

from sfbench.external.load import is_external, load_any_model

__all__ = ["is_external", "load_any_model"]
