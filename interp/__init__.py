"""grokscope's substrate: tasks, hookable models, training, checkpoints and the zoo."""

from interp.metrics import evaluate
from interp.tasks import OPERATIONS, Task, TaskSpec

__version__ = "0.1.0"

__all__ = ["Task", "TaskSpec", "OPERATIONS", "evaluate", "zoo", "__version__"]


def __getattr__(name):
    # `from interp import zoo` without importing the zoo (and its files) on every `import interp`.
    if name == "zoo":
        import importlib

        return importlib.import_module("interp.zoo")
    raise AttributeError(f"module 'interp' has no attribute {name!r}")
