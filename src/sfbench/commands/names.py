"""The names of the methods, datasets, solvers, metrics and networks, for the help texts.

The registries themselves (:data:`sfbench.methods.METHODS`,
:data:`sfbench.data.DATASETS`, :data:`sfbench.solvers.SOLVERS`, ...) import
torch, which costs seconds of CPU; building the parser for ``sfbench --help``
must not. Each tuple is the built-in names, then the names of the installed
plug-ins' entry points (:func:`sfbench.plugins.names`: read from the
distributions' metadata, nothing imported), in the registries' order.
``tests/test_cli_startup.py`` checks that these tuples equal the registries'
keys, so a new built-in entry fails a test until it is named here too. Names
are still validated by the registries when a command runs (their errors list
the valid names).
"""

from sfbench.plugins import GROUPS, names

BUILTIN_METHODS = ("ddpm", "dsm", "probability_flow", "cfm", "ot_cfm", "rectified_flow")
BUILTIN_DATASETS = (
    "8gaussians", "25gaussians", "gmm_aniso", "moons", "checkerboard", "2spirals", "swissroll",
    "circles", "digits", "fashion_mnist", "cifar10",
)
BUILTIN_SOLVERS = (
    "euler", "heun", "midpoint", "rk4", "dopri5", "euler_maruyama", "ddim", "ddpm_ancestral",
    "pc", "dpm_solver_pp_2m", "edm_heun",
)
BUILTIN_METRICS = ("w2", "mmd", "fd", "fid", "kid")
BUILTIN_NETWORKS = ("mlp", "unet")

METHODS = BUILTIN_METHODS + names(GROUPS["methods"])
DATASETS = BUILTIN_DATASETS + names(GROUPS["datasets"])
SOLVERS = BUILTIN_SOLVERS + names(GROUPS["solvers"])
METRICS = BUILTIN_METRICS + names(GROUPS["metrics"])
NETWORKS = BUILTIN_NETWORKS + names(GROUPS["networks"])
