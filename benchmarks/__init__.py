"""sfbench's benchmark suite: ratios measured side by side, a regression guard, BENCHMARKS.md.

    python -m benchmarks run [--quick]     # measure, write benchmarks/results/*.json, BENCHMARKS.md
    python -m benchmarks check [--quick]   # measure afresh, compare with the committed ratios
"""
