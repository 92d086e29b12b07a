"""Errors the pipeline raises on purpose: each message says what failed and what to do."""


class PipelineError(RuntimeError):
    """A stage stopped the run; the CLI prints the message and exits 1."""
