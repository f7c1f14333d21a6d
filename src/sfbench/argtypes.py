"""Value types of the command-line parsers (argparse ``type=`` callables).

Shared by the top-level parser (``cli.py``) and every command's parser; they
import nothing heavy, so building ``sfbench --help`` stays cheap.
"""

from __future__ import annotations

import argparse


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value
