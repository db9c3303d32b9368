"""grokscope's substrate: tasks, hookable models, training, checkpoints and the zoo."""

from interp.metrics import evaluate
from interp.tasks import OPERATIONS, Task, TaskSpec

__version__ = "0.1.0"

__all__ = ["Task", "TaskSpec", "OPERATIONS", "evaluate", "__version__"]
