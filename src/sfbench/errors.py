"""Errors that carry a message meant for the user (the CLI prints them without a traceback)."""


class SfbenchError(Exception):
    """Base of the errors the CLI reports as ``error: <message>`` with exit status 1."""


class NonFiniteLossError(SfbenchError):
    """Training produced a NaN or infinite loss."""


class CheckpointError(SfbenchError):
    """A checkpoint or model file is missing, truncated or not an sfbench file."""


class DataFileError(SfbenchError):
    """A data or sample file is missing, malformed, of the wrong shape or not finite."""


class OutputWriteError(SfbenchError):
    """An output could not be written (read-only directory, disk full); nothing was left."""


class ExternalModelError(SfbenchError):
    """A model sfbench did not train (a diffusers directory, a model spec file) is malformed,
    cannot be loaded, or does not fit its declaration or its dataset."""
