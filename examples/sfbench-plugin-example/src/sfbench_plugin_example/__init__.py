"""An example sfbench plug-in (docs/EXTENDING.md).

Each entry lives in its own module, and this file imports none of them: sfbench
imports a plug-in's module when it first reads that registry, and a package
``__init__`` that imported all three would load the solver and metric modules
whenever the method is wanted.
"""
