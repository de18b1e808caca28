"""meterbench harness: data, tasks, registry, runner, reports."""

__version__ = "0.1.0"
