"""The run's hyperparameters as a typed dataclass (`HP`): every field with its default, where that
comes from (`origin`), one line of what it is (`doc`) and its paper_tables.yaml key (`yaml`), and the
preset names (`SCALES`). Imports nothing of the package, so the env registry can check a task's
defaults against it; dm2_repro/config.py builds a run's values from it (make_hp) and re-exports it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# paper_hp: the paper's per-update settings with a shorter budget (dm2_repro/config.py); listed before `paper`, so a
# scale later in this tuple is never smaller
SCALES = ("smoke", "cpu", "paper_hp", "paper")
# where a field's default comes from (HP field metadata `origin`)
ORIGINS = ("paper", "original code", "PyMARL", "MAPPO", "our choice")


def _hp(default, origin: str, doc: str, yaml_key: str | None = None):
    """An HP field: its default, where that comes from, one line of what it is, and its YAML key
    (`section.key`; `maps.key` for a per-map value) if paper_tables.yaml holds it."""
    assert origin in ORIGINS, origin
    meta = dict(origin=origin, doc=doc)
    if yaml_key:
        meta["yaml"] = yaml_key
    return field(default=default, metadata=meta)


@dataclass
class HP:
    # ---- run budget and protocol (env steps) ----
    n_envs: int = _hp(32, "our choice", "parallel environments collecting episodes (the paper ran one: same data)")
    t_max: int = _hp(10_000_000, "paper", "training budget in env steps", "maps.t_max")
    eval_every: int = _hp(50_000, "original code", "env steps between test evaluations", "ippo.eval_every")
    log_every: int = _hp(10_000, "our choice", "training scalars are logged as means over this many env steps")
    test_episodes: int = _hp(32, "original code", "greedy test episodes per evaluation", "maps.test_episodes")
    save_policy_every: int = _hp(1_000_000, "original code", "env steps between expert policy snapshots "
                                 "(demonstration sources)", "ippo.save_policy_every")
    checkpoint_every: int = _hp(50_000, "our choice", "env steps between resumable checkpoints")
    # ---- IPPO, also DM²'s policy learner (Table 1 per map, Appendix C) ----
    buffer_episodes: int = _hp(1024, "paper", "episodes per PPO update (Table 1)", "maps.buffer_episodes")
    ppo_epochs: int = _hp(15, "paper", "PPO epochs per update (Table 1 \"epochs\")", "maps.ppo_epochs")
    clip: float = _hp(0.2, "paper", "PPO ratio clip, also the value clip (Table 1)", "maps.clip")
    hidden: int = _hp(64, "paper", "GRU/MLP width of the agent nets, shared by QMIX and RMAPPO", "ippo.hidden")
    lr: float = _hp(5e-4, "paper", "Adam learning rate (IPPO, RMAPPO)", "ippo.lr")
    adam_eps: float = _hp(1e-5, "original code", "Adam epsilon (IPPO, RMAPPO)", "ippo.adam_eps")
    gamma: float = _hp(0.99, "paper", "discount (every learner)", "ippo.gamma")
    gae_lambda: float = _hp(0.95, "paper", "GAE lambda (IPPO, RMAPPO)", "ippo.gae_lambda")
    entropy_coef: float = _hp(0.01, "paper", "entropy bonus (Table 1 \"gain\"; IPPO, RMAPPO)", "ippo.entropy_coef")
    value_loss_coef: float = _hp(0.5, "original code", "value loss weight (IPPO)", "ippo.value_loss_coef")
    huber_delta: float = _hp(10.0, "original code", "Huber delta of the (always clipped) value loss",
                             "ippo.huber_delta")
    max_grad_norm: float = _hp(10.0, "original code", "gradient norm clip (every learner)", "ippo.max_grad_norm")
    # ---- GAIL / DM² (Table 2) ----
    gail_coef: float = _hp(0.3, "paper", "c: weight of the GAIL reward (Table 2 \"gail rew coef\")", "maps.gail_coef")
    gail_hidden: int = _hp(64, "original code", "discriminator MLP width", "gail.hidden")
    gail_lr: float = _hp(1e-3, "paper", "discriminator learning rate (Table 2)", "gail.lr")
    gail_epochs: int = _hp(120, "original code", "discriminator steps per PPO update, per agent", "gail.epochs")
    gail_batch_episodes: int = _hp(64, "original code", "expert and agent episodes per discriminator step",
                                   "gail.batch_episodes")
    gail_buffer_episodes: int = _hp(1024, "original code", "agent episodes the discriminator sees: the current "
                                    "on-policy batch, at most this many", "gail.buffer_episodes")
    demo_episodes: int = _hp(1000, "paper", "demonstration episodes per agent (Table 2 \"n exp eps\")",
                             "gail.demo_episodes")
    grad_penalty: float = _hp(10.0, "original code", "discriminator gradient penalty weight", "gail.grad_penalty")
    sil_store_episodes: int = _hp(1024, "original code", "SIL: best past episodes kept, by discounted return",
                                  "gail.sil_store_episodes")
    # ---- BC pretraining (Figure 5; not in the original code) ----
    bc_epochs: int = _hp(20, "our choice", "behaviour-cloning passes over the demonstrations")
    bc_batch_episodes: int = _hp(64, "our choice", "demonstration episodes per behaviour-cloning step")
    # ---- QMIX (PyMARL defaults; shares hidden, gamma and max_grad_norm; double Q always on) ----
    qmix_lr: float = _hp(5e-4, "PyMARL", "RMSprop learning rate", "qmix.lr")
    qmix_optim_alpha: float = _hp(0.99, "PyMARL", "RMSprop alpha", "qmix.optim_alpha")
    qmix_optim_eps: float = _hp(1e-5, "PyMARL", "RMSprop epsilon", "qmix.optim_eps")
    qmix_batch_episodes: int = _hp(32, "PyMARL", "episodes per QMIX update", "qmix.batch_episodes")
    qmix_buffer_episodes: int = _hp(5000, "PyMARL", "replay buffer size in episodes", "qmix.buffer_episodes")
    epsilon_start: float = _hp(1.0, "PyMARL", "QMIX exploration epsilon at the start", "qmix.epsilon_start")
    epsilon_finish: float = _hp(0.05, "PyMARL", "QMIX exploration epsilon after annealing", "qmix.epsilon_finish")
    epsilon_anneal_steps: int = _hp(50_000, "PyMARL", "env steps of linear epsilon annealing",
                                    "qmix.epsilon_anneal_steps")
    target_update_episodes: int = _hp(200, "PyMARL", "episodes between target network updates",
                                      "qmix.target_update_episodes")
    mixing_embed_dim: int = _hp(32, "PyMARL", "mixing network width", "qmix.mixing_embed_dim")
    hypernet_embed: int = _hp(64, "PyMARL", "hypernetwork width", "qmix.hypernet_embed")
    # ---- RMAPPO (MAPPO's SMAC defaults; shares IPPO's hidden, lr, adam_eps, gamma, gae_lambda,
    # entropy_coef, huber_delta, max_grad_norm; one minibatch, ValueNorm always on) ----
    rmappo_ppo_epochs: int = _hp(5, "MAPPO", "PPO epochs per update (5 on most SMAC maps)", "rmappo.ppo_epochs")
    rmappo_clip: float = _hp(0.2, "MAPPO", "PPO ratio and value clip", "rmappo.clip")
    rmappo_value_loss_coef: float = _hp(1.0, "MAPPO", "value loss weight", "rmappo.value_loss_coef")
    rmappo_buffer_episodes: int = _hp(32, "our choice", "whole episodes per update (MAPPO: 8 threads x 400 "
                                      "steps; see algos/mappo.py)")
