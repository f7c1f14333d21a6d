"""The names of the methods, datasets and solvers, for the commands' help texts.

The registries themselves (:data:`sfbench.methods.METHODS`,
:data:`sfbench.data.DATASETS`, :data:`sfbench.solvers.SOLVERS`) import torch,
which costs seconds of CPU; building the parser for ``sfbench --help`` must
not. ``tests/test_cli_startup.py`` checks that these tuples equal the
registries' keys, in order, so a new entry fails a test until it is named
here too. Names are still validated by the registries when a command runs
(their errors list the valid names).
"""

METHODS = ("ddpm", "dsm", "probability_flow", "cfm", "ot_cfm", "rectified_flow")
DATASETS = (
    "8gaussians", "25gaussians", "gmm_aniso", "moons", "checkerboard", "2spirals", "swissroll",
    "circles", "digits", "fashion_mnist", "cifar10",
)
SOLVERS = (
    "euler", "heun", "midpoint", "rk4", "dopri5", "euler_maruyama", "ddim", "ddpm_ancestral",
    "pc", "dpm_solver_pp_2m", "edm_heun",
)
