"""Learner registry: algo name -> (module, class, options). Options select a named variant of
one learner (e.g. dm2_state_action is DM2 with a state-action discriminator)."""
from __future__ import annotations

import importlib

ALGOS: dict[str, tuple[str, str, dict]] = {
    "ippo": ("ippo", "IPPO", {}),
    "dm2": ("dm2", "DM2", dict(discriminator_input="obs", reward="mixed")),
    "dm2_state_action": ("dm2", "DM2", dict(discriminator_input="obs_action", reward="mixed")),
    "gail_only": ("dm2", "DM2", dict(discriminator_input="obs", reward="gail")),
    "sil": ("dm2", "SIL", dict(discriminator_input="obs", reward="mixed")),
    "bc_ippo": ("bc", "BCPretrained", dict(base="ippo")),
    "bc_dm2": ("bc", "BCPretrained", dict(base="dm2")),
    "qmix": ("qmix", "QMIX", dict(agent_arch="pymarl")),
    "qmix_ippo_arch": ("qmix", "QMIX", dict(agent_arch="ippo")),
    "rmappo": ("mappo", "RMAPPO", {}),
}
NEEDS_DEMO = {"dm2", "dm2_state_action", "gail_only", "bc_ippo", "bc_dm2"}


def learner_class(algo: str):
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}; valid algos: {', '.join(ALGOS)}")
    module, cls, options = ALGOS[algo]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls), options


def make_learner(algo: str, spec, hp, device="cpu", demo=None):
    cls, options = learner_class(algo)
    if algo in NEEDS_DEMO and demo is None:
        raise ValueError(f"algo {algo!r} learns from demonstrations: pass demo=<path to .npz>")
    learner = cls(spec, hp, device, demo=demo, **options)
    learner.name = algo
    return learner
