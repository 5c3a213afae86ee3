"""Toy check of the paper's core claim: on a game where coordination matters, DM² with
demonstrations of the jointly optimal team reaches the optimum in fewer updates than IPPO.

    python -m dm2_repro.theory.toy_coordination                 # seeds 0-4, writes results/toy_coordination.csv
    python -m dm2_repro.theory.toy_coordination --gail-coefs 0.3 1 2 5 10    # the coefficient sweep (README, toy check)

The game is the repeated climbing game (dm2_repro/envs/toy.py). Both learners are the package's
own IPPO and DM2 classes with the same hyperparameters (TOY_HP; DM²'s gail_coef = GAIL_COEF); DM² gets a
demonstration file of the scripted optimal team (both agents always play `a`), written with the
demos module's writer and read back with `load_demo`, as a real run would. After every update the
greedy joint policy is played once (the game is deterministic, so one episode is exact) and we
record whether it reaches the optimal return.
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from dm2_repro.algos import make_learner
from dm2_repro.config import HP
from dm2_repro.demos import empty_demo_arrays, finalize_demo_arrays, load_demo, scatter_team_episodes, \
    style_plan, write_demo
from dm2_repro.envs.toy import ClimbingGameEnv, OptimalTeamPolicy
from dm2_repro.training.rollout import collect

SEEDS = (0, 1, 2, 3, 4)
N_ROUNDS = 4
N_UPDATES = 50
# DM²'s coefficient of the GAIL reward. The paper's values (0.05-0.4) balance it against SMAC's
# per-step rewards, a 0-20 return spread over dozens of steps; here the same return comes in 4 steps,
# and the miscoordination penalty alone is -13.6 per step, while the discriminator's logit (the GAIL
# reward) stays within about +-1.5 (gradient penalty, one-hot observations). README (toy check) has the sweep.
GAIL_COEF = 10.0
# IPPO's paper values (config.HP defaults) except the per-update budgets, which follow the `cpu`
# preset (16 episodes per PPO update, 20 discriminator steps of 16+16 episodes, 200 demo episodes).
TOY_HP = HP(n_envs=16, buffer_episodes=16, gail_buffer_episodes=16, gail_epochs=20, gail_batch_episodes=16,
            demo_episodes=200, gail_coef=GAIL_COEF)
EVAL_COUNTER = 10**6  # greedy evaluation episodes use rollout counters disjoint from training


# ---------------------------------------------------------------------------------------------
# Demonstrations of the optimal team
# ---------------------------------------------------------------------------------------------

def write_optimal_demo(path: str | Path, n_episodes: int, n_rounds: int = N_ROUNDS) -> Path:
    """Record n_episodes of the scripted optimal team and write them with the demos module's writer
    (co_concurrent style: agent k's e-th episode is joint episode e, as in DM²)."""
    env = ClimbingGameEnv(n_envs=min(n_episodes, 64), n_rounds=n_rounds)
    spec, K = env.spec, env.spec.n_agents
    plan = style_plan("co_concurrent", K, n_episodes)
    arrays = empty_demo_arrays(n_episodes, spec.episode_limit, K, spec.obs_dim, spec.n_actions)
    team, gen = OptimalTeamPolicy(K), torch.Generator().manual_seed(0)
    for first in range(0, n_episodes, env.n_envs):
        batch = collect(env, team, min(env.n_envs, n_episodes - first), (0, first), greedy=False, generator=gen)
        chunk = dict(obs=batch.obs.numpy(), actions=batch.actions.numpy(), avail=batch.avail.numpy(),
                     ep_length=batch.ep_length.numpy(), ep_return=batch.ep_return.numpy(),
                     battle_won=batch.battle_won.numpy() > 0.5)
        scatter_team_episodes(arrays, plan, 0, first, chunk)
    arrays = finalize_demo_arrays(arrays)
    meta = dict(map=spec.map_name, backend="toy", style="co_concurrent", source_algo="scripted_optimal",
                source_runs=[], quality=1.0, demo_win_rate=float(arrays["battle_won"].mean()),
                demo_return_mean=float(arrays["ep_return"].mean()))
    return write_demo(path, arrays, meta)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def greedy_episode(learner, eval_env: ClimbingGameEnv, generator):
    return collect(eval_env, learner, 1, (0, EVAL_COUNTER), greedy=True, generator=generator)


def train(algo: str, seed: int, n_updates: int, hp: HP = TOY_HP, demo=None, n_rounds: int = N_ROUNDS,
          stop_at_optimum: bool = False):
    """Train `algo` (ippo | dm2) for n_updates PPO updates. Returns (optimal, last): after each update,
    whether the greedy joint policy is optimal, and the last greedy episode (an EpisodeBatch of 1).
    Randomness (init, episodes, sampling) derives from `seed` alone."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    env, eval_env = ClimbingGameEnv(hp.n_envs, n_rounds), ClimbingGameEnv(1, n_rounds)
    learner = make_learner(algo, env.spec, hp, demo=demo)
    gen = torch.Generator().manual_seed(seed)
    optimal = []
    for u in range(n_updates):
        batch = collect(env, learner, hp.buffer_episodes, (seed, u), greedy=False, generator=gen)
        learner.after_rollout(batch)
        learner.update(batch)
        last = greedy_episode(learner, eval_env, gen)
        optimal.append(bool(last.battle_won[0] > 0.5))
        if stop_at_optimum and optimal[-1]:
            break
    return optimal, last


def train_curve(*args, **kwargs) -> list[bool]:
    """train(...)'s per-update optimality only."""
    return train(*args, **kwargs)[0]


def joint_actions_text(episode) -> str:
    """The joint action of every round of a 1-episode batch, e.g. 'bc bb bb bb'."""
    names = "abc"
    T = int(episode.ep_length[0])
    return " ".join("".join(names[a] for a in episode.actions[0, t].tolist()) for t in range(T))


def updates_to_optimum(optimal: list[bool]) -> int | None:
    """1-based index of the first update after which the greedy policy is optimal (None: never)."""
    return next((u + 1 for u, ok in enumerate(optimal) if ok), None)


def stays_optimal_from(optimal: list[bool]) -> int | None:
    """1-based index of the update from which the greedy policy is optimal until the end (None: not at the end)."""
    if not optimal or not optimal[-1]:
        return None
    u = len(optimal)
    while u > 1 and optimal[u - 2]:
        u -= 1
    return u


# ---------------------------------------------------------------------------------------------
# The example
# ---------------------------------------------------------------------------------------------

def run(seeds=SEEDS, n_updates: int = N_UPDATES, gail_coefs=(GAIL_COEF,), hp: HP = TOY_HP,
        out_csv: str | Path | None = None, n_rounds: int = N_ROUNDS) -> list[dict]:
    """IPPO, then DM² at every coefficient in gail_coefs, each for every seed. One row per run."""
    rows = []
    configs = [("ippo", None)] + [("dm2", c) for c in gail_coefs]
    with tempfile.TemporaryDirectory() as tmp:
        demo_path = write_optimal_demo(Path(tmp) / "climbing_optimal.npz", hp.demo_episodes, n_rounds)
        demo = load_demo(demo_path, ClimbingGameEnv(1, n_rounds).spec)
        for algo, coef in configs:
            for seed in seeds:
                t0 = time.process_time()
                run_hp = hp if coef is None else replace(hp, gail_coef=coef)
                optimal, last = train(algo, seed, n_updates, run_hp, demo if algo == "dm2" else None, n_rounds)
                rows.append(dict(algo=algo, gail_coef="" if coef is None else coef, seed=seed, n_updates=n_updates,
                                 first_optimal_update=updates_to_optimum(optimal) or "",
                                 optimal_from_update=stays_optimal_from(optimal) or "",
                                 optimal_at_end=int(optimal[-1]),
                                 final_greedy_return=round(float(last.ep_return[0]), 2),
                                 final_greedy_actions=joint_actions_text(last),
                                 cpu_seconds=round(time.process_time() - t0, 1),
                                 greedy_optimal_per_update="".join("1" if ok else "0" for ok in optimal)))
                print(_row_text(rows[-1]), flush=True)
    if out_csv:
        out_csv = Path(out_csv)
        out_csv.parent.mkdir(parents=True, exist_ok=True)
        with open(out_csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return rows


def _label(r: dict) -> str:
    return "IPPO" if r["algo"] == "ippo" else f"DM² (gail_coef {r['gail_coef']:g})"


def _row_text(r: dict) -> str:
    return (f"{_label(r):>22} seed {r['seed']}: first optimal at update {r['first_optimal_update'] or '-':>3}, "
            f"optimal from update {r['optimal_from_update'] or '-':>3} to the end, "
            f"final greedy {r['final_greedy_actions']} (return {r['final_greedy_return']:g}) "
            f"({r['cpu_seconds']} s cpu)")


def summary(rows: list[dict]) -> str:
    """Markdown table: per configuration, updates to the optimum per seed as first/stays-from."""
    seeds = list(dict.fromkeys(r["seed"] for r in rows))
    lines = ["| learner | " + " | ".join(f"seed {s}" for s in seeds)
             + " | optimal at end | median first | final greedy returns |",
             "|---|" + "---|" * len(seeds) + "---|---|---|"]
    for label in dict.fromkeys(_label(r) for r in rows):
        rs = {r["seed"]: r for r in rows if _label(r) == label}
        cells = [f"{rs[s]['first_optimal_update'] or '-'} / {rs[s]['optimal_from_update'] or '-'}" for s in seeds]
        med = float(np.median([rs[s]["first_optimal_update"] or np.inf for s in seeds]))
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {sum(r['optimal_at_end'] for r in rs.values())}/"
                     f"{len(rs)} | {'never' if np.isinf(med) else f'{med:g}'} | "
                     + ", ".join(f"{rs[s]['final_greedy_return']:g}" for s in seeds) + " |")
    n = rows[0]["n_updates"]
    lines.append(f"\ncell = first update at which the greedy joint policy is optimal / update from which it stays "
                 f"optimal to the end ('-' = never within {n} updates)")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--updates", type=int, default=N_UPDATES)
    p.add_argument("--gail-coefs", type=float, nargs="+", default=[GAIL_COEF],
                   help=f"DM² runs for each coefficient (default {GAIL_COEF}; the paper's 3s_vs_3z value is 0.3)")
    p.add_argument("--out", default="results/toy_coordination.csv")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # tiny networks: threads only add overhead (and the machine is shared)
    rows = run(args.seeds, args.updates, args.gail_coefs, TOY_HP, args.out)
    print(summary(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
