"""The learners: one protocol, one registry entry per algorithm with its capabilities.

The trainer (train.py) drives every learner the same way, once per iteration:

    learner.start_rollout(t_env)      # the env-step counter, passed explicitly (QMIX's epsilon)
    batch = collect(env, learner, learner.episodes_per_rollout, ...)   # init_hidden / act
    learner.after_rollout(batch)      # data kept across updates (SIL's store, QMIX's replay)
    stats = learner.update(batch)     # one update; a dict of scalars to log

plus `state_dict`/`load_state_dict` (checkpoints: everything, optimisers included) and
`policy_state`/`load_policy_state` (policy snapshots: what acting needs). What else may be done with an
algorithm is in its `Capabilities`, read by the trainer, the demonstration collector and the input
checks; nothing probes a learner's attributes.

This module imports nothing heavy (validate.py reads the capabilities before torch loads).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

ACTING_STYLES = ("stochastic", "epsilon_greedy")
# train's `gail_reward` key: the form of the GAIL reward r_gail of the learners that have one
# (Capabilities.gail_reward; formulas and sources in docs/dm2.md, code in algos/dm2.py):
#   absorbing  log-odds z_k on real steps + the absorbing state after a game ends before the time limit
#   paper      Algorithm 1's r = -log D_agent = softplus(z_k) on real steps
#   logit      z_k on real steps only: the form of every DM²-family run committed before 2026-12-07,
#              which pays agents to end games early (no absorbing state once padding is masked)
GAIL_REWARDS = ("absorbing", "paper", "logit")
DEFAULT_GAIL_REWARD = "absorbing"
LEGACY_GAIL_REWARD = "logit"   # what a run recorded without the key used (it predates the key)


@dataclass(frozen=True)
class Capabilities:
    needs_demo: bool = False     # learns from a demonstration file: train needs demo=<npz>
    demo_source: bool = False    # an expert: its snapshots may be demonstration sources; saves its final policy
    pretrains: bool = False      # behavioural cloning on the demonstrations before RL (algos.bc.pretrain)
    acting: str = "stochastic"   # how a snapshot acts when demonstrating: samples π, or epsilon-greedy on Q
    acts_as: str = ""            # the algo whose learner loads this one's policy snapshots ("": itself);
    #                              DM²'s variants act with IPPO's actor, so their snapshots load into IPPO
    gail_reward: bool = False    # learns from a GAIL reward: train's `gail_reward` form applies to it

    def __post_init__(self):
        if self.acting not in ACTING_STYLES:
            raise ValueError(f"acting must be one of {ACTING_STYLES}, got {self.acting!r}")


@dataclass(frozen=True)
class AlgoSpec:
    module: str                  # dm2_repro.algos.<module>
    cls: str                     # the learner class in it
    options: dict = field(default_factory=dict)   # constructor options: a named variant of the class
    caps: Capabilities = Capabilities()


_IMITATOR = Capabilities(needs_demo=True, acts_as="ippo", gail_reward=True)
ALGOS: dict[str, AlgoSpec] = {
    "ippo": AlgoSpec("ippo", "IPPO", caps=Capabilities(demo_source=True)),
    "dm2": AlgoSpec("dm2", "DM2", dict(discriminator_input="obs", reward="mixed"), _IMITATOR),
    "dm2_state_action": AlgoSpec("dm2", "DM2", dict(discriminator_input="obs_action", reward="mixed"), _IMITATOR),
    "gail_only": AlgoSpec("dm2", "DM2", dict(discriminator_input="obs", reward="gail"), _IMITATOR),
    "sil": AlgoSpec("dm2", "SIL", caps=Capabilities(acts_as="ippo", gail_reward=True)),
    "bc_ippo": AlgoSpec("ippo", "IPPO", caps=Capabilities(needs_demo=True, pretrains=True, acts_as="ippo")),
    "bc_dm2": AlgoSpec("dm2", "DM2", dict(discriminator_input="obs", reward="mixed"),
                       Capabilities(needs_demo=True, pretrains=True, acts_as="ippo", gail_reward=True)),
    "qmix": AlgoSpec("qmix", "QMIX", dict(agent_arch="pymarl"),
                     Capabilities(demo_source=True, acting="epsilon_greedy")),
    "qmix_ippo_arch": AlgoSpec("qmix", "QMIX", dict(agent_arch="ippo"),
                               Capabilities(demo_source=True, acting="epsilon_greedy")),
    "rmappo": AlgoSpec("mappo", "RMAPPO", caps=Capabilities(demo_source=True)),
}


@runtime_checkable
class Learner(Protocol):
    """What the trainer, the rollout and the demonstration collector use of a learner."""
    name: str
    episodes_per_rollout: int    # episodes the trainer collects before each update

    def init_hidden(self, n: int): ...

    def act(self, obs, state, avail, last_action, hidden, greedy: bool, generator=None): ...

    def acting_net(self): ...   # common.ActingNet: the net `act` uses, for the jitted rollout (jax_rollout.py)

    def start_rollout(self, t_env: int) -> None: ...

    def after_rollout(self, batch) -> None: ...

    def update(self, batch) -> dict: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, sd: dict) -> None: ...

    def policy_state(self) -> dict: ...

    def load_policy_state(self, sd: dict) -> None: ...


def algo_spec(algo: str) -> AlgoSpec:
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}; valid algos: {', '.join(ALGOS)}")
    return ALGOS[algo]


def capabilities(algo: str) -> Capabilities:
    return algo_spec(algo).caps


def acting_algo(algo: str) -> str:
    """The algo whose learner acts from `algo`'s policy snapshots."""
    return capabilities(algo).acts_as or algo


def learner_class(algo: str):
    spec = algo_spec(algo)
    return getattr(importlib.import_module(f"{__name__}.{spec.module}"), spec.cls), spec.options


def gail_reward_of(algo: str, gail_reward: str | None) -> str:
    """The GAIL reward form a run of `algo` learns from: "" for algos without a GAIL reward, else
    `gail_reward` (DEFAULT_GAIL_REWARD if None), checked against GAIL_REWARDS."""
    if not capabilities(algo).gail_reward:
        return ""
    form = DEFAULT_GAIL_REWARD if gail_reward is None else gail_reward
    if form not in GAIL_REWARDS:
        raise ValueError(f"unknown gail_reward {form!r}; valid: {', '.join(GAIL_REWARDS)}")
    return form


def make_learner(algo: str, spec, hp, device="cpu", demo=None, gail_reward: str | None = None):
    """`algo`'s learner; `gail_reward` (a GAIL_REWARDS form, default DEFAULT_GAIL_REWARD) for the
    algos that learn from a GAIL reward, ignored by the others."""
    cls, options = learner_class(algo)
    if capabilities(algo).needs_demo and demo is None:
        raise ValueError(f"algo {algo!r} learns from demonstrations: pass demo=<path to .npz>")
    form = gail_reward_of(algo, gail_reward)
    if form:
        options = dict(options, gail_reward=form)
    learner = cls(spec, hp, device, demo=demo, **options)
    learner.name = algo
    return learner
