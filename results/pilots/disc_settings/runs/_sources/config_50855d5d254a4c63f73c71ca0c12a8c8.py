"""Typed run configuration: paper values (paper_tables.yaml) -> scale preset -> user overrides.

Scales: `smoke` (CI, seconds), `cpu` (a 2-core machine, minutes per run), `paper` (the paper's
budgets). Where a preset departs from the paper it says so in DEPARTURES (README lists them).
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

TABLES_PATH = Path(__file__).resolve().parent.parent / "paper_tables.yaml"
SCALES = ("smoke", "cpu", "paper")


@functools.lru_cache(maxsize=None)
def paper_tables() -> dict:
    with open(TABLES_PATH) as f:
        return yaml.safe_load(f)


@dataclass
class HP:
    # run budget and protocol (env steps)
    n_envs: int = 32
    t_max: int = 10_000_000
    eval_every: int = 50_000
    log_every: int = 10_000  # training scalars are logged as means over this many env steps (our choice)
    test_episodes: int = 32
    save_policy_every: int = 1_000_000  # expert snapshots (demonstration sources)
    checkpoint_every: int = 50_000  # resumable checkpoint
    # IPPO (per map from Table 1)
    buffer_episodes: int = 1024  # episodes per PPO update
    ppo_epochs: int = 15
    clip: float = 0.2
    hidden: int = 64
    lr: float = 5e-4
    adam_eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    entropy_coef: float = 0.01
    value_loss_coef: float = 0.5
    huber_delta: float = 10.0
    max_grad_norm: float = 10.0
    # GAIL / DM2 (Table 2)
    gail_coef: float = 0.3
    gail_hidden: int = 64
    gail_lr: float = 1e-3
    gail_epochs: int = 120
    gail_batch_episodes: int = 64
    gail_buffer_episodes: int = 1024
    demo_episodes: int = 1000
    grad_penalty: float = 10.0
    sil_store_episodes: int = 1024
    # BC pretraining (Figure 5; not in the original code)
    bc_epochs: int = 20
    bc_batch_episodes: int = 64
    # QMIX (PyMARL defaults)
    qmix_lr: float = 5e-4
    qmix_optim_alpha: float = 0.99
    qmix_optim_eps: float = 1e-5
    qmix_batch_episodes: int = 32
    qmix_buffer_episodes: int = 5000
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_steps: int = 50_000
    target_update_episodes: int = 200
    mixing_embed_dim: int = 32
    hypernet_embed: int = 64
    # RMAPPO (MAPPO's SMAC defaults)
    rmappo_ppo_epochs: int = 5
    rmappo_clip: float = 0.2
    rmappo_value_loss_coef: float = 1.0
    rmappo_buffer_episodes: int = 32


# scale presets: the fields they set on top of the paper's values
PRESETS: dict[str, dict] = {
    "paper": {},
    "cpu": dict(n_envs=16, t_max=200_000, eval_every=5_000, log_every=5_000, save_policy_every=5_000,
                checkpoint_every=10_000, buffer_episodes=16, gail_buffer_episodes=16, gail_epochs=20,
                gail_batch_episodes=16, demo_episodes=200, sil_store_episodes=64, bc_epochs=10,
                rmappo_buffer_episodes=16, qmix_buffer_episodes=1000, target_update_episodes=50),
    "smoke": dict(n_envs=4, t_max=800, eval_every=400, log_every=0, save_policy_every=400,
                  checkpoint_every=400, buffer_episodes=4, ppo_epochs=2, gail_buffer_episodes=4, gail_epochs=2,
                  gail_batch_episodes=4, demo_episodes=8, sil_store_episodes=8, bc_epochs=2, bc_batch_episodes=4,
                  qmix_batch_episodes=4, qmix_buffer_episodes=16, target_update_episodes=4, epsilon_anneal_steps=400,
                  rmappo_ppo_epochs=2, rmappo_buffer_episodes=4),
}
# cpu budgets per map (env steps): chosen so learning is visible in minutes on 2 cores
CPU_T_MAX = {"3s_vs_3z": 100_000, "3s_vs_4z": 400_000, "5m_vs_6m": 1_000_000, "3s_vs_5z": 1_000_000,
             "8m_vs_9m": 1_000_000}

DEPARTURES = {
    "cpu": "16 episodes per PPO update (paper: 1024) with 16 parallel envs; 20 discriminator steps of 16+16 "
           "episodes per update (paper: 120 of 64+64); 200 demonstration episodes (paper: 1000); SIL store of "
           "64 episodes (paper: 1024); QMIX buffer 1000 episodes, target update every 50 episodes (paper: 5000, "
           "200); eval every 5k steps; t_max per map (CPU_T_MAX) instead of 10M.",
    "smoke": "tiny budgets for CI: every count shrunk so a run takes seconds; no learning expected.",
    "paper": "32 parallel envs collect the 1024-episode buffer (the paper ran one env: same data, faster).",
}


def make_hp(algo: str, map_name: str, scale: str, overrides: dict | None = None) -> HP:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
    tables = paper_tables()
    if map_name not in tables["maps"]:
        raise ValueError(f"unknown map {map_name!r}; valid maps: {', '.join(tables['maps'])}")
    m = tables["maps"][map_name]
    values = dict(ppo_epochs=m["ppo_epochs"], clip=m["clip"], buffer_episodes=m["buffer_episodes"],
                  gail_coef=m["gail_coef"], t_max=m["t_max"], test_episodes=m["test_episodes"])
    ippo, gail = tables["ippo"], tables["gail"]
    values.update(hidden=ippo["hidden"], lr=ippo["lr"], adam_eps=ippo["adam_eps"], gamma=ippo["gamma"],
                  gae_lambda=ippo["gae_lambda"], entropy_coef=ippo["entropy_coef"],
                  value_loss_coef=ippo["value_loss_coef"], huber_delta=ippo["huber_delta"],
                  max_grad_norm=ippo["max_grad_norm"], eval_every=ippo["eval_every"],
                  save_policy_every=ippo["save_policy_every"],
                  gail_hidden=gail["hidden"], gail_lr=gail["lr"], gail_epochs=gail["epochs"],
                  gail_batch_episodes=gail["batch_episodes"], gail_buffer_episodes=gail["buffer_episodes"],
                  demo_episodes=gail["demo_episodes"], grad_penalty=gail["grad_penalty"],
                  sil_store_episodes=gail["sil_store_episodes"])
    q, r = tables["qmix"], tables["rmappo"]
    values.update(qmix_lr=q["lr"], qmix_optim_alpha=q["optim_alpha"], qmix_optim_eps=q["optim_eps"],
                  qmix_batch_episodes=q["batch_episodes"], qmix_buffer_episodes=q["buffer_episodes"],
                  epsilon_start=q["epsilon_start"], epsilon_finish=q["epsilon_finish"],
                  epsilon_anneal_steps=q["epsilon_anneal_steps"], target_update_episodes=q["target_update_episodes"],
                  mixing_embed_dim=q["mixing_embed_dim"], hypernet_embed=q["hypernet_embed"],
                  rmappo_ppo_epochs=r["ppo_epochs"], rmappo_clip=r["clip"], rmappo_value_loss_coef=r["value_loss_coef"])
    values.update(PRESETS[scale])
    if scale == "cpu":
        values["t_max"] = CPU_T_MAX[map_name]
    overrides = dict(overrides or {})
    valid = {f.name for f in fields(HP)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(f"unknown hp key(s) {unknown}; valid keys: {', '.join(sorted(valid))}")
    values.update(overrides)
    hp = HP(**values)
    for f in fields(HP):  # keep the declared types (Sacred's command line may give ints for floats)
        cast = {"int": int, "float": float}[f.type]
        setattr(hp, f.name, cast(getattr(hp, f.name)))
    return hp


def hp_dict(hp: HP) -> dict:
    return asdict(hp)
