"""The house rules as tests, in the manner of scikit-learn's common estimator checks: every public
function of the analysis follows one call convention unless docs/ARCHITECTURE.md names it as an
exception with its reason, every public result is a frozen `Result`, and the layers keep to their side
of the probes / circuits line."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import circuits
import probes
from interp.results import Result

ARCHITECTURE = Path(__file__).resolve().parent.parent / "docs" / "ARCHITECTURE.md"
# The studies' analyses of trained models follow the convention too (the rest of a study is data,
# learners and theory: ARCHITECTURE.md, "One call convention").
STUDY_ANALYSES = ("studies.distillation.transfer",)


def analysis_modules() -> list[str]:
    names = [m.name for pkg in (probes, circuits) for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
    return sorted(names) + list(STUDY_ANALYSES)


def documented_exceptions() -> dict[str, str]:
    """{dotted name: reason} from the exceptions table of docs/ARCHITECTURE.md."""
    text = ARCHITECTURE.read_text()
    table = text[text.index("| exception | why it has another signature |") :].split("\n\n")[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    out = {}
    for row in rows:
        name, reason = (cell.strip() for cell in row.strip("|").split("|", 1))
        out[name.strip("`")] = reason
    return out


def public_functions():
    for name in analysis_modules():
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if inspect.isfunction(obj) and obj.__module__ == name:  # a re-export is checked where it is defined
                yield name, attr, obj


def convention_problem(fn) -> str | None:
    """What breaks `f(subject, task=None, *, device=None, ...)` in fn's signature, or None."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) < 2 or params[0].name != "subject" or params[1].name != "task":
        return f"starts ({', '.join(p.name for p in params[:2])}) instead of (subject, task)"
    if params[0].kind != params[0].POSITIONAL_OR_KEYWORD or params[1].default is not None:
        return "task must be a positional argument defaulting to None"
    positional = [p.name for p in params[2:] if p.kind != p.KEYWORD_ONLY]
    if positional:
        return f"options {positional} must be keyword-only (after *)"
    device = inspect.signature(fn).parameters.get("device")
    if device is None or device.default is not None:
        return "needs device=None"
    return None


def test_every_analysis_module_declares_its_public_names():
    missing = [name for name in analysis_modules() if not hasattr(importlib.import_module(name), "__all__")]
    assert not missing, f"modules without __all__ (their public names): {missing}"


def test_every_public_analysis_function_follows_the_call_convention_or_is_a_documented_exception():
    exceptions = documented_exceptions()
    broken = []
    for module, attr, fn in public_functions():
        if module in exceptions or f"{module}.{attr}" in exceptions:
            continue
        problem = convention_problem(fn)
        if problem:
            broken.append(f"{module}.{attr}: {problem}")
    assert not broken, "add them to the convention, or to ARCHITECTURE.md's exceptions with a reason:\n" + "\n".join(
        broken
    )


def test_every_documented_exception_exists_and_has_a_reason():
    for name, reason in documented_exceptions().items():
        assert len(reason) > 20, f"{name}: the reason is missing"
        module, _, attr = name.rpartition(".")
        try:
            importlib.import_module(name)
        except ImportError:
            assert hasattr(importlib.import_module(module), attr), f"{name} does not exist: remove it from the table"


def test_every_public_result_is_a_frozen_result_dataclass():
    loose, exceptions = [], documented_exceptions()
    for name in analysis_modules():
        if name in exceptions:  # kernels and bases, not analyses: their dataclasses are not results
            continue
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and obj.__module__ == name:
                if not (issubclass(obj, Result) and obj.__dataclass_params__.frozen):
                    loose.append(f"{name}.{attr}")
    assert not loose, f"results that are not frozen Result dataclasses: {loose}"


def test_the_convention_check_catches_what_it_should():
    def good(subject, task=None, *, device=None, k=3): ...
    def positional_option(subject, task=None, k=3, *, device=None): ...
    def no_task(subject, *, device=None): ...
    def no_device(subject, task=None, *, k=3): ...

    assert convention_problem(good) is None
    assert "keyword-only" in convention_problem(positional_option)
    assert "instead of (subject, task)" in convention_problem(no_task)
    assert "device" in convention_problem(no_device)


@pytest.mark.parametrize("package", ["probes"])
def test_probes_never_edit_a_model(package):
    """Probes observe (ARCHITECTURE.md, "Probes read, circuits intervene"): no probe module calls the
    editing kernels (expanded-batch variants, hooks that replace activations) or copies a model to edit it."""
    editing = re.compile(
        r"run_variants|copy\.deepcopy\(|load_state_dict\(|fwd_hooks=\[\(.*lambda act, hook: [a-z_]+\)\]"
    )
    root = Path(importlib.import_module(package).__file__).parent
    offenders = [f.name for f in root.glob("*.py") if editing.search(f.read_text())]
    assert not offenders, f"probe modules that edit a model: {offenders}"
