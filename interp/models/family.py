"""Model families: what grokscope needs to know about a kind of model, registered in one place.

A family is a config dataclass (frozen, with a class attribute `family` naming it, `to_dict()` and
validation in `__post_init__`) and a model class built from it (`model_class(cfg)`). Everything else a
family brings lives on the model class itself, as TransformerLens's models carry their own hook points:
its hook vocabulary (`resolve_hook`, `hook_layout`, `expansion_point`), its neurons (`neuron_hook`,
`neuron_in_weights`, `neuron_out_weights`, `hidden_act`), its read-outs (`answer_logits`,
`linear_readout`, `embedding_table`, `unembedding_table`). Storage, training and the analysis look the
family up here by name and never branch on it, so a new family is one new file that calls
`register_family` (the MLP and the transformer register themselves in interp.models).

Families defined outside the core (the studies' denoisers, say) are found by name through the
`grokscope.model_families` entry-point group of installed packages, so that `load()` of a run directory
builds their models without the caller importing anything first; an entry point names an installed
module, never a file's contents, so loading stays free of arbitrary code.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points

from interp.errors import SpecError

ENTRY_POINT_GROUP = "grokscope.model_families"


@dataclass(frozen=True)
class ModelFamily:
    """A kind of model: its name, its config class and its model class; `stacked_class` (optional) runs
    M models of one config as one batched computation in training sweeps (interp.models.stacked); without
    one the engine stacks the family generically (interp.models.functional.FunctionalStack, torch.func)."""

    name: str
    config_class: type
    model_class: type
    stacked_class: type | None = None


_FAMILIES: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    """Make `family` known to build_model, storage, training and the analysis; returns it. Registering
    the same name again replaces the earlier entry (a reloaded module), but only with the same config
    class name, so two different families cannot silently share a name."""
    if not isinstance(family, ModelFamily):
        raise SpecError("register_family", "family", type(family).__name__, "a ModelFamily")
    if getattr(family.config_class, "family", None) != family.name:
        raise SpecError(
            "register_family",
            "config_class.family",
            getattr(family.config_class, "family", None),
            repr(family.name),
            "The config class must name its family in a class attribute `family`.",
        )
    old = _FAMILIES.get(family.name)
    if old is not None and old.config_class.__qualname__ != family.config_class.__qualname__:
        raise SpecError(
            "register_family",
            "name",
            family.name,
            f"a name not taken (it is {old.config_class.__qualname__}'s)",
        )
    _FAMILIES[family.name] = family
    return family


def family_names() -> list[str]:
    """The families known now, and those installed packages offer through entry points."""
    offered = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(set(_FAMILIES) | offered)


def get_family(name) -> ModelFamily:
    """The family called `name` (loading an installed package's entry point on first use), or a
    SpecError listing the known ones."""
    if name in _FAMILIES:
        return _FAMILIES[name]
    if isinstance(name, str):
        for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
            found = ep.load()
            if isinstance(found, ModelFamily):
                register_family(found)
            if name in _FAMILIES:
                return _FAMILIES[name]
    raise SpecError(
        "model_config",
        "family",
        name,
        f"one of {family_names()}",
        "A family defined outside grokscope must be registered (interp.models.register_family) before use.",
    )


def family_of(obj) -> ModelFamily:
    """The family of a config, or of a model (through its `cfg`)."""
    cfg = obj if not hasattr(obj, "cfg") else obj.cfg
    name = getattr(cfg, "family", None)
    if name is None:
        raise SpecError(
            "model",
            "cfg.family",
            None,
            f"a model or config of a registered family ({family_names()})",
            "Pass a grokscope model built with interp.models.build_model (or loaded with interp.checkpoints.load).",
        )
    return get_family(name)
