"""The network registry: a model file's ``network`` spec -> the network it names.

A spec is a plain dictionary, ``{"kind": "mlp" | "unet", ...}`` with the
constructor's arguments, so a model file rebuilds its network without
unpickling any code (:mod:`sfbench.checkpoint`). The entry that fixes the
input -- ``dim`` for the MLP, ``shape`` for the U-Net -- is also the sample
shape the wrapped :class:`~sfbench.model.NetworkModel` declares.
"""

from __future__ import annotations

from torch import nn

from sfbench import plugins
from sfbench.errors import CheckpointError
from sfbench.models.mlp import MLP
from sfbench.models.unet import UNet


def _check_plugin(kind: str, network) -> str | None:
    if isinstance(network, type) and issubclass(network, nn.Module):
        return None
    return f"expected a subclass of torch.nn.Module, got {network!r}"


#: kind -> network class; a spec's other entries are the class's arguments. After the
#: built-ins, the ``sfbench.networks`` plug-ins (:mod:`sfbench.plugins`), loaded when
#: the registry is first read.
NETWORKS: plugins.Registry[type[nn.Module]] = plugins.Registry(
    plugins.GROUPS["networks"], {"mlp": MLP, "unet": UNet}, _check_plugin
)


def build_network(spec: dict) -> nn.Module:
    """The network a spec describes; an unknown kind names the valid ones."""
    kind = spec.get("kind")
    if kind not in NETWORKS:
        raise CheckpointError(f"unknown network kind {kind!r}; valid: {', '.join(NETWORKS)}")
    return NETWORKS[kind](**{k: v for k, v in spec.items() if k != "kind"})


def network_sample_shape(spec: dict) -> tuple[int, ...]:
    """Shape of one sample the network spec takes: ``shape`` (images) or ``(dim,)`` (vectors)."""
    if spec.get("shape") is not None:
        return tuple(int(s) for s in spec["shape"])
    if spec.get("dim") is not None:
        return (int(spec["dim"]),)
    raise CheckpointError(f"network spec {spec} names neither 'shape' nor 'dim'")
