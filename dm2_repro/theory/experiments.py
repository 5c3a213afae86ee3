"""The theory-check experiments. Each `panel_*` returns (curves, summary) DataFrames:

curves  long format: curve, step, mean, se, n_seeds   (n_seeds = number of starts / runs averaged)
summary one row per measured scalar: panel, quantity, value, note

`run_all` writes results/theory/<panel>.csv (curves) and results/theory/summary.csv. All numbers are exact
(linear solves, no sampling); the only randomness is the initial joint policies and the random games.
"""
from __future__ import annotations

import os
from itertools import permutations

import numpy as np
import pandas as pd

from .gail import (LearnerConfig, best_response_gain, expert_marginals, induced_mdp,
                   mixed_reward, random_logits, run_learners)
from .games import (MarkovGame, diagonal_reward, four_tile_gridworld, grid_state_index, joint_optimal_policy,
                    occupy_a_reward, one_hot_policy, random_game, softmax, state_visitation, task_return,
                    uniform_policies)

PANELS = ("convergence", "monotonicity", "incompatible", "cotrained", "theorem3", "condition1")
CONVERGED_DIST = 0.01  # a start "converged" if max_{i,s} TV(pi_i(.|s), pi_E_i(.|s)) < this at the end
DECREASE_TOL = 1e-9  # a per-update change below -DECREASE_TOL counts as a decrease (float noise is ~1e-15)
NPG = LearnerConfig(eta=0.3)  # the default learner: exact softmax NPG on the paper's -log D reward


# ----------------------------------------------------------------------------- helpers


def curve(name: str, steps, runs: np.ndarray) -> pd.DataFrame:
    """Mean and standard error over runs [n_runs, n_steps] -> long rows."""
    runs = np.atleast_2d(np.asarray(runs, float))
    n = runs.shape[0]
    se = runs.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(runs.shape[1])
    return pd.DataFrame({"curve": name, "step": np.asarray(steps), "mean": runs.mean(axis=0), "se": se,
                         "n_seeds": n})


def summary_rows(panel: str, items: list[tuple[str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"panel": panel, "quantity": q, "value": float(v), "note": note} for q, v, note in items])


def many_starts(game, rho_E, expert_pis, n_starts, n_rounds, cfg, rng, record_every=1):
    """Independent learners from n_starts random initial joint policies; stacks each metric to [n_starts, n]."""
    hists = [run_learners(game, rho_E, expert_pis, random_logits(game, rng), n_rounds, cfg, record_every)
             for _ in range(n_starts)]
    out = {k: np.stack([h[k] for h in hists]) for k in hists[0] if k not in ("logits_final", "update")}
    out["update"] = hists[0]["update"]
    out["logits_final"] = [h["logits_final"] for h in hists]
    return out


def decreases(x: np.ndarray) -> np.ndarray:
    """Boolean [n_runs, n_updates]: did x drop at this single-agent update?"""
    return np.diff(x, axis=1) < -DECREASE_TOL


def ever_decreased(x: np.ndarray) -> np.ndarray:
    """Boolean [n_runs, n_updates]: has x dropped at least once up to and including this update?"""
    return np.logical_or.accumulate(decreases(x), axis=1)


def assumption1_violations(hist, K: int) -> np.ndarray:
    """Boolean [n_runs, n_updates]: the updating agent's match probability fell at some state.

    Assumption 1 asks that a GAIL improvement raises E[1{a_i = a_i^E(s)}] at every state; hist["m"] holds the
    per-state match probabilities m[run, record, s, i]; update u is made by agent u % K.
    """
    m = hist["m"]
    dm = np.diff(m, axis=1)  # [run, update, s, i]
    agent = np.arange(dm.shape[1]) % K
    own = dm[:, np.arange(dm.shape[1]), :, agent]  # [update, run, s] (advanced indexing moves axes)
    return (own < -DECREASE_TOL).any(axis=2).T


def greedy(pis: list[np.ndarray]) -> list[np.ndarray]:
    return [one_hot_policy(p.argmax(axis=1), p.shape[1]) for p in pis]


# ----------------------------------------------------------------------------- games used


def convergence_games(seed: int) -> list[MarkovGame]:
    """Two small random team games with co-trained (jointly optimal, deterministic) experts.

    The 3-agent game has sparse transitions (Dirichlet 0.1) and gamma = 0.95, so visitation is uneven and an
    agent's step can move probability mass around a lot: a harder case for the monotonicity claim.
    """
    g2 = random_game(5, (3, 3), gamma=0.9, seed=seed + 11)
    g3 = random_game(4, (2, 2, 2), gamma=0.95, seed=seed + 12, concentration=0.1)
    return [MarkovGame(g2.T, g2.b0, g2.gamma, g2.R, "2 agents, |S|=5, |A_i|=3", g2.state_labels),
            MarkovGame(g3.T, g3.b0, g3.gamma, g3.R, "3 agents, |S|=4, |A_i|=2", g3.state_labels)]


# ----------------------------------------------------------------------------- panels


def panel_convergence(seed: int = 0, n_starts: int = 64, n_rounds: int = 60):
    """Independent GAIL from many random joint policies to a co-trained joint expert (Theorem 2).

    Returns curves for K - J and K - L per update, the monotonicity curves (fraction of starts in which L or
    L_bar has decreased at least once so far) and the summary."""
    rng = np.random.default_rng(seed)
    curves, mono, items = [], [], []
    variants = {"NPG, -log(1-D) reward": NPG,
                "NPG, logit reward": LearnerConfig(eta=0.3, reward="logit"),
                "vanilla PG, -log(1-D) reward": LearnerConfig(eta=3.0, update="pg")}
    for game in convergence_games(seed):
        K = game.n_agents
        expert = joint_optimal_policy(game)
        rho_E = expert_marginals(game, expert)
        tag = f"{K} agents"
        items.append((f"{tag}: min_s rho_E(s)", state_visitation(game, expert).min(), game.name))
        for vname, cfg in variants.items():
            h = many_starts(game, rho_E, expert, n_starts, n_rounds, cfg, rng)
            ever = ever_decreased
            if cfg is NPG:
                curves.append(curve(f"{tag}: K - J", h["update"], K - h["J"]))
                curves.append(curve(f"{tag}: K - L", h["update"], K - h["L"]))
                mono.append(curve(f"{tag}, NPG: L dropped", h["update"][1:], ever(h["L"])))
                mono.append(curve(f"{tag}, NPG: L_bar dropped", h["update"][1:], ever(h["L_bar"])))
            if cfg.update == "pg":
                mono.append(curve(f"{tag}, vanilla PG: L dropped", h["update"][1:], ever(h["L"])))
            final = h["dist"][:, -1]
            pre = f"{tag}, {vname}"
            items += [
                (f"{pre}: fraction converged (dist<{CONVERGED_DIST})", np.mean(final < CONVERGED_DIST),
                 f"{n_starts} starts, {n_rounds} rounds"),
                (f"{pre}: final max TV distance to expert (mean)", final.mean(), ""),
                (f"{pre}: final max TV distance to expert (max)", final.max(), ""),
                (f"{pre}: final K - J (mean)", np.mean(K - h["J"][:, -1]), ""),
                (f"{pre}: min over all updates of J - L", (h["J"] - h["L"]).min(), "Theorem 1 says >= 0"),
                (f"{pre}: fraction of updates where L drops", decreases(h["L"]).mean(), "proof claims 0"),
                (f"{pre}: fraction of starts with >=1 L drop", decreases(h["L"]).any(axis=1).mean(), ""),
                (f"{pre}: largest single-update L drop", max(0.0, -np.diff(h["L"], axis=1).min()), "0 = never dropped"),
                (f"{pre}: fraction of updates where L_bar drops", decreases(h["L_bar"]).mean(),
                 "Corollary 1 bound L_eps = eps|S|L_bar"),
                (f"{pre}: fraction of starts with >=1 L_bar drop", decreases(h["L_bar"]).any(axis=1).mean(), ""),
                (f"{pre}: fraction of updates violating Assumption 1 at some state",
                 assumption1_violations(h, K).mean(), "updating agent's pi_i(a^E|s) fell somewhere"),
                (f"{pre}: fraction of updates where J drops", decreases(h["J"]).mean(), "not claimed monotone"),
            ]
    return pd.concat(curves), pd.concat(mono), summary_rows("convergence", items)


def gridworld_teams(game: MarkovGame):
    """Two co-trained expert teams for the four-tile gridworld: in team k, agent k holds tile A and the other
    agent waits on the opposite tile D (each team is the optimal joint policy for that task)."""
    return [joint_optimal_policy(game, occupy_a_reward(game, k)) for k in (0, 1)]


def exclusivity_lower_bound(game: MarkovGame, team_1, team_2) -> float:
    """A certificate that the incompatible mismatch cannot reach 0.

    sum_i JS(rho_i, rho_E_i) >= sum_i JS_binary(P(agent i on A), q_i) by data processing (coarsen (s, a_i) to
    "agent i stands on A"), and any joint policy has P(1 on A) + P(2 on A) <= 1 because tiles are exclusive.
    q_i = P(agent i on A) under agent i's own demonstrator. Minimise over the feasible pairs on a grid.
    """
    on_a = [np.array([lab[i] == "A" for lab in game.state_labels]) for i in (0, 1)]
    q1 = state_visitation(game, team_1) @ on_a[0]
    q2 = state_visitation(game, team_2) @ on_a[1]

    def js_bin(x, q):  # JS between Bernoulli(x) and Bernoulli(q), vectorised over x
        m = 0.5 * (x + q)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = [np.where(a > 0, a * np.log(a / b), 0.0) for a, b in
                     ((x, m), (1 - x, 1 - m), (q, m), (1 - q, 1 - m))]
        return 0.5 * sum(terms)

    grid = np.linspace(0.0, 1.0, 1001)
    total = js_bin(grid, q1)[:, None] + js_bin(grid, q2)[None, :]  # [x, y]
    feasible = grid[:, None] + grid[None, :] <= 1.0 + 1e-12
    return float(total[feasible].min())


def panel_incompatible(seed: int = 0, n_starts: int = 64, n_rounds: int = 100, slip: float = 0.1):
    """Section 5's four-tile gridworld: both agents' demonstrations put *them* on tile A (incompatible),
    versus both demonstrations taken from one co-trained team (compatible)."""
    rng = np.random.default_rng(seed + 1)
    game = four_tile_gridworld(slip=slip, gamma=0.9)
    team_1, team_2 = gridworld_teams(game)
    m1, m2 = expert_marginals(game, team_1), expert_marginals(game, team_2)
    cases = {"compatible (one team)": ([m1[0], m1[1]], [team_1[0], team_1[1]]),
             "incompatible (both on A)": ([m1[0], m2[1]], [team_1[0], team_2[1]])}
    curves, items = [], []
    bound = exclusivity_lower_bound(game, team_1, team_2)
    for name, (rho_E, experts) in cases.items():
        h = many_starts(game, rho_E, experts, n_starts, n_rounds, NPG, rng)
        curves.append(curve(name, h["update"], h["mismatch"]))
        final = h["mismatch"][:, -1]
        # does the joint policy settle? compare the last two rounds' mismatch
        wobble = np.abs(h["mismatch"][:, -1] - h["mismatch"][:, -1 - 2 * game.n_agents])
        items += [(f"{name}: final mismatch sum_i JS (mean)", final.mean(), "nats, max 2 log 2 = 1.386"),
                  (f"{name}: final mismatch (min over starts)", final.min(), f"{n_starts} starts"),
                  (f"{name}: final mismatch (max over starts)", final.max(), ""),
                  (f"{name}: min mismatch over all starts and updates", h["mismatch"][:, 1:].min(), ""),
                  (f"{name}: |change of mismatch over the last 2 rounds| (max)", wobble.max(), ""),
                  (f"{name}: final max TV distance to own demonstrator (mean)", h["dist"][:, -1].mean(), "")]
    curves.append(curve("exclusivity lower bound (incompatible)", [0, n_rounds * game.n_agents], [[bound, bound]]))
    items.append(("incompatible: certified lower bound on mismatch", bound, "tile-A exclusivity, data processing"))
    return pd.concat(curves), summary_rows("incompatible", items)


def train_task_teams(game: MarkovGame, n_seeds: int, seed: int, n_rounds: int = 100):
    """Expert teams trained *independently per seed*: each seed runs decentralised NPG on the task reward
    alone (agents take turns), then each agent's greedy policy is its expert. Different seeds can settle on
    different conventions (equilibria) of a coordination task."""
    cfg = LearnerConfig(eta=1.0, gail_weight=0.0, task_weight=1.0)
    teams = []
    for k in range(n_seeds):
        rng = np.random.default_rng(seed * 1000 + 100 + k)
        h = run_learners(game, None, None, random_logits(game, rng), n_rounds, cfg, record_every=10 ** 9)
        teams.append(greedy([softmax(z) for z in h["logits_final"]]))
    return teams


def nash_gap(game: MarkovGame, pis) -> float:
    """max_i best-response gain under the task reward R_T (0 at a Nash equilibrium)."""
    return max(best_response_gain(game, pis, i, induced_mdp(game, pis, i)[1]) for i in range(game.n_agents))


def panel_cotrained(seed: int = 0, n_seeds: int = 8, starts_per_team: int = 4, n_rounds: int = 60,
                    dm2_coef: float = 0.3):
    """Tabular Figure 3: learners imitating co-trained experts vs experts from different training seeds.

    Task: stand on opposite corners (four equally good configurations, so training seeds pick conventions).
    Learners: independent GAIL (Algorithm 2), DM² (R_T + c r_GAIL, Algorithm 1 with exact steps) and a
    task-reward-only decentralised baseline (the IPPO analogue). Curves show task return / optimal return.
    """
    rng = np.random.default_rng(seed + 2)
    game = four_tile_gridworld(slip=0.1, gamma=0.9)
    game = game.with_reward(diagonal_reward(game), "diagonal task")
    optimum = task_return(game, joint_optimal_policy(game))
    teams = train_task_teams(game, n_seeds, seed)
    gaps = [nash_gap(game, t) for t in teams]
    marg = [expert_marginals(game, t) for t in teams]

    pairs = {"co-trained": [(k, k) for k in range(n_seeds) for _ in range(starts_per_team)],
             "different seeds": list(permutations(range(n_seeds), 2))}
    methods = {"GAIL": LearnerConfig(eta=0.3),
               "DM²": LearnerConfig(eta=0.3, task_weight=1.0, gail_weight=dm2_coef)}
    curves, items = [], []
    items.append(("expert teams: task return / optimum (mean)",
                  np.mean([task_return(game, t) for t in teams]) / optimum, f"{n_seeds} seeds"))
    items.append(("expert teams: fraction that are Nash for R_T (gap < 1e-9)", np.mean(np.array(gaps) < 1e-9), ""))
    same = [all(np.array_equal(teams[a][i], teams[b][i]) for i in (0, 1)) for a, b in pairs["different seeds"]]
    items.append(("different-seed pairs with identical expert policies", np.mean(same), "then compatible"))
    for demo, plist in pairs.items():
        mixed_ret = [task_return(game, [teams[a][0], teams[b][1]]) / optimum for a, b in plist]
        items.append((f"{demo}: demonstrators executed together, return / optimum (mean)", np.mean(mixed_ret), ""))
        for mname, cfg in methods.items():
            hs = [run_learners(game, [marg[a][0], marg[b][1]], [teams[a][0], teams[b][1]], random_logits(game, rng),
                               n_rounds, cfg) for a, b in plist]
            ret = np.stack([h["task_return"] for h in hs]) / optimum
            mis = np.stack([h["mismatch"] for h in hs])
            curves.append(curve(f"{mname}, {demo}", hs[0]["update"], ret))
            items += [(f"{mname}, {demo}: final return / optimum (mean)", ret[:, -1].mean(), f"{len(plist)} runs"),
                      (f"{mname}, {demo}: final return / optimum (min)", ret[:, -1].min(), ""),
                      (f"{mname}, {demo}: return / optimum at update 20 (mean)", ret[:, 20].mean(), ""),
                      (f"{mname}, {demo}: final mismatch (mean)", mis[:, -1].mean(), "")]
    base = [run_learners(game, None, None, random_logits(game, rng), n_rounds,
                         LearnerConfig(eta=0.3, gail_weight=0.0, task_weight=1.0)) for _ in pairs["co-trained"]]
    ret = np.stack([h["task_return"] for h in base]) / optimum
    curves.append(curve("task reward only (IPPO analogue)", base[0]["update"], ret))
    items += [("task only: final return / optimum (mean)", ret[:, -1].mean(), f"{len(base)} runs"),
              ("task only: return / optimum at update 20 (mean)", ret[:, 20].mean(), "")]
    return pd.concat(curves), summary_rows("cotrained", items)


LAMBDAS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def panel_theorem3(seed: int = 0):
    """Theorem 3: is the expert a Nash equilibrium of R_T + lambda R_I,i? Best-response gain per agent.

    R_I,i is the converged discriminator reward at the joint policy being checked, against agent i's
    demonstrations. Cases: the co-trained optimal expert (Nash for R_T: gains must be ~0); the uniform joint
    policy imitating that expert (not an equilibrium: gains must be > 0, so the check can fail); and a
    demonstrator team that is *not* Nash for R_T (agents from two different training seeds), checked against
    its own demonstrations (the theorem's premise fails; large lambda makes imitation dominate).
    """
    game = four_tile_gridworld(slip=0.1, gamma=0.9)
    game = game.with_reward(diagonal_reward(game), "diagonal task")
    expert = joint_optimal_policy(game)
    rho_E = expert_marginals(game, expert)
    teams = train_task_teams(game, 8, seed)
    # the first cross-seed pairing that is not an equilibrium of R_T
    mixed = next(([teams[a][0], teams[b][1]] for a, b in permutations(range(8), 2)
                  if nash_gap(game, [teams[a][0], teams[b][1]]) > 1e-3), None)
    if mixed is None:
        raise RuntimeError("every cross-seed team is a Nash equilibrium; pick another seed")
    cases = {"co-trained expert (Nash for R_T)": (expert, rho_E),
             "uniform policy, imitating the expert": (uniform_policies(game), rho_E),
             "cross-seed team (not Nash for R_T)": (mixed, expert_marginals(game, mixed))}
    curves, items = [], []
    for name, (pis, demos) in cases.items():
        for i in range(game.n_agents):
            gains = [best_response_gain(game, pis, i, mixed_reward(game, pis, i, demos[i], lam)) for lam in LAMBDAS]
            curves.append(curve(f"{name}: agent {i + 1}", LAMBDAS, [gains]))
            items += [(f"{name}, agent {i + 1}: gain at lambda={lam:g}", g, "normalised return") for lam, g in
                      zip(LAMBDAS, gains)]
    return pd.concat(curves), summary_rows("theorem3", items)


SLIPS = (0.0, 0.001, 0.01, 0.05, 0.1, 0.2)


def panel_condition1(seed: int = 0, n_starts: int = 32, n_rounds: int = 100):
    """Condition 1 (every state visited with probability >= eps). The gridworld from one fixed start (agents
    on D and A, the expert swaps them round to A and D) with slip 0 is deterministic: the expert's trajectory
    visits 3 of 12 states, so eps = 0 and the expert is unidentifiable elsewhere. Small slip restores it."""
    rng = np.random.default_rng(seed + 3)
    curves, items = [], []
    finals = {k: [] for k in ("K - J", "dist, expert-visited states", "dist, all states (NPG)",
                              "dist, all states (vanilla PG)", "expert's eps = min_s rho_E(s)")}
    for slip in SLIPS:
        b0 = np.zeros(12)
        b0[grid_state_index("D", "A")] = 1.0
        game = four_tile_gridworld(slip=slip, gamma=0.9, b0=b0)
        expert = joint_optimal_policy(game, occupy_a_reward(game, 0))
        rho_E = expert_marginals(game, expert)
        rho_s_E = state_visitation(game, expert)
        seen = rho_s_E > 1e-12
        runs = {}
        for uname, cfg in (("NPG", NPG), ("vanilla PG", LearnerConfig(eta=3.0, update="pg"))):
            h = many_starts(game, rho_E, expert, n_starts, n_rounds, cfg, rng, record_every=n_rounds * 2)
            runs[uname] = h
        h = runs["NPG"]
        pis_final = [[softmax(z) for z in zs] for zs in h["logits_final"]]
        dist_seen = [max(0.5 * np.abs(p[i][seen] - expert[i][seen]).sum(axis=1).max() for i in range(2))
                     for p in pis_final]
        finals["K - J"].append(2 - h["J"][:, -1])
        finals["dist, expert-visited states"].append(np.array(dist_seen))
        finals["dist, all states (NPG)"].append(h["dist"][:, -1])
        finals["dist, all states (vanilla PG)"].append(runs["vanilla PG"]["dist"][:, -1])
        finals["expert's eps = min_s rho_E(s)"].append(np.full(n_starts, rho_s_E.min()))
        items += [(f"slip={slip:g}: min_s rho_E(s) (expert's eps)", rho_s_E.min(), ""),
                  (f"slip={slip:g}: states the expert visits", seen.sum(), "of 12"),
                  (f"slip={slip:g}: final K - J (mean)", (2 - h["J"][:, -1]).mean(), "NPG"),
                  (f"slip={slip:g}: final mismatch (mean)", h["mismatch"][:, -1].mean(), "NPG"),
                  (f"slip={slip:g}: final dist on expert-visited states (mean)", np.mean(dist_seen), "NPG"),
                  (f"slip={slip:g}: final dist on all states (mean)", h["dist"][:, -1].mean(), "NPG"),
                  (f"slip={slip:g}: fraction converged on all states", np.mean(h["dist"][:, -1] < CONVERGED_DIST),
                   "NPG"),
                  (f"slip={slip:g}: final dist on all states, vanilla PG (mean)",
                   runs["vanilla PG"]["dist"][:, -1].mean(), "")]
    for name, vals in finals.items():
        curves.append(curve(name, SLIPS, np.stack(vals, axis=1)))
    return pd.concat(curves), summary_rows("condition1", items)


# ----------------------------------------------------------------------------- driver


def run_all(out_dir: str = "results/theory", seed: int = 0, quick: bool = False) -> dict[str, str]:
    """Run every panel and write <out_dir>/<panel>.csv plus summary.csv. quick=True shrinks the runs (tests)."""
    os.makedirs(out_dir, exist_ok=True)
    n = 8 if quick else 64
    rounds = 20 if quick else 60
    conv, mono, s_conv = panel_convergence(seed, n_starts=n, n_rounds=rounds)
    inc, s_inc = panel_incompatible(seed, n_starts=n // 2 if quick else 64, n_rounds=40 if quick else 100)
    cot, s_cot = panel_cotrained(seed, n_seeds=3 if quick else 8, starts_per_team=2 if quick else 4,
                                 n_rounds=rounds)
    th3, s_th3 = panel_theorem3(seed)
    c1, s_c1 = panel_condition1(seed, n_starts=4 if quick else 32, n_rounds=40 if quick else 100)
    frames = {"convergence": conv, "monotonicity": mono, "incompatible": inc, "cotrained": cot,
              "theorem3": th3, "condition1": c1}
    paths = {}
    for name, df in frames.items():
        paths[name] = os.path.join(out_dir, f"{name}.csv")
        df.to_csv(paths[name], index=False)
    paths["summary"] = os.path.join(out_dir, "summary.csv")
    pd.concat([s_conv, s_inc, s_cot, s_th3, s_c1]).to_csv(paths["summary"], index=False)
    return paths
