"""Independent GAIL learners with exact discriminators and exact policy steps (Algorithm 2, Appendix A).

Discriminator convention used throughout this package
-----------------------------------------------------
D(s, a_i) is the probability that the pair (s, a_i) came from expert i's demonstrations. Trained to
convergence on the GAIL objective

    G(D) = sum rho_E_i log D + sum rho_i log(1 - D)

it has the closed form D*(s, a_i) = rho_E_i / (rho_E_i + rho_i).

Rewards (`reward=`):
  "paper": r = -log(1 - D)         (default)
  "logit": r = log D - log(1 - D) = log(rho_E_i / rho_i)   (the AIRL-style variant)

Why the default: the paper's discriminator scores the *agent* (Appendix A writes
r = -log D_paper = -log rho_i / (rho_E_i + rho_i), as in Ho & Ermon 2016), so D_paper = 1 - D and
the paper's -log D is our -log(1 - D): the same number. This reward is >= 0, is exactly 0 on pairs the
expert never visits, and with D = D* its policy gradient is minus the gradient of the Jensen-Shannon
divergence between rho_i and rho_E_i, so a policy step on it descends the GAIL objective.

Per update of agent i (one "turn"), as in Algorithm 2: others fixed, the discriminator is refit to
convergence (closed form), then agent i takes one exact policy step on its own reward
c * r_i + w_T * R_T (w_T = 0 is pure independent GAIL; w_T > 0 is the DM² reward mix of Algorithm 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .games import (MarkovGame, best_response, evaluate_policy, induced_mdp, marginal_visitations, softmax,
                    state_visitation, task_return)


# ----------------------------------------------------------------------------- discriminator


def optimal_discriminator(rho_E_i: np.ndarray, rho_i: np.ndarray) -> np.ndarray:
    """D*(s, a_i) = rho_E_i / (rho_E_i + rho_i); pairs neither side visits get D = 0 (reward 0). [S, A_i]"""
    total = rho_E_i + rho_i
    return np.divide(rho_E_i, total, out=np.zeros_like(total), where=total > 0)


def gail_objective(D: np.ndarray, rho_E_i: np.ndarray, rho_i: np.ndarray) -> float:
    """G(D) = E_{rho_E_i}[log D] + E_{rho_i}[log(1 - D)], the quantity the discriminator maximises."""
    with np.errstate(divide="ignore"):
        log_d = np.where(rho_E_i > 0, np.log(D), 0.0)
        log_1md = np.where(rho_i > 0, np.log1p(-D), 0.0)
    return float((rho_E_i * log_d).sum() + (rho_i * log_1md).sum())


def discriminator_reward(D: np.ndarray, kind: str = "paper", clip: float = 1e-6) -> np.ndarray:
    """Reward from the discriminator; D is clipped only where a log would be infinite (D = 1 where the
    agent never goes but the expert does; D = 0, for the logit, where the expert never goes)."""
    if kind == "paper":
        return -np.log1p(-np.minimum(D, 1.0 - clip))
    if kind == "logit":
        D = np.clip(D, clip, 1.0 - clip)
        return np.log(D) - np.log1p(-D)
    raise ValueError(f"unknown reward kind {kind!r}")


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (nats, in [0, log 2]) between two distributions of the same shape."""
    m = 0.5 * (p + q)

    def kl_to_m(x):
        keep = x > 1e-300  # 0 log 0 = 0; the cut also keeps m (>= x / 2) away from underflow
        return float(np.sum(x[keep] * (np.log(x[keep]) - np.log(m[keep]))))

    return 0.5 * kl_to_m(p) + 0.5 * kl_to_m(q)


# ----------------------------------------------------------------------------- action matching (Section 4)


def action_match_probs(pis: list[np.ndarray], expert_pis: list[np.ndarray]) -> np.ndarray:
    """m[s, i] = P(agent i's action matches expert i's at s) = sum_a pi_i(a|s) pi_E_i(a|s).

    For a deterministic expert this is E_{a_i ~ pi_i}[1{a_i = a_i^E(s)}], the indicator of Section 4.
    """
    return np.stack([(p * e).sum(axis=1) for p, e in zip(pis, expert_pis)], axis=1)  # [S, K]


def J_objective(rho_s: np.ndarray, m: np.ndarray) -> float:
    """Eq. (2): J(pi) = sum_s rho(s) [(K - 1) + P(all agents match at s)]; agents act independently given s."""
    K = m.shape[1]
    return float(rho_s @ ((K - 1) + m.prod(axis=1)))


def L_objective(rho_s: np.ndarray, m: np.ndarray) -> float:
    """Eq. (3): L(pi) = sum_s rho(s) sum_i P(agent i matches at s); Theorem 1 says J >= L."""
    return float(rho_s @ m.sum(axis=1))


def L_bar(m: np.ndarray) -> float:
    """Corollary 1's visitation-free bound up to its positive constant: L_eps = eps |S| L_bar, with
    L_bar = mean_s sum_i P(agent i matches at s) in [0, K]. Monotonicity of L_eps == that of L_bar."""
    return float(m.sum(axis=1).mean())


def policy_distance(pis: list[np.ndarray], expert_pis: list[np.ndarray], states=None) -> float:
    """max over agents and states of the total-variation distance between pi_i(.|s) and pi_E_i(.|s)."""
    sel = slice(None) if states is None else states
    return float(max((0.5 * np.abs(p[sel] - e[sel]).sum(axis=1)).max() for p, e in zip(pis, expert_pis)))


# ----------------------------------------------------------------------------- learners


@dataclass(frozen=True)
class LearnerConfig:
    eta: float = 1.0  # step size; for NPG the (1 - gamma) of the textbook update is folded into it
    update: str = "npg"  # "npg": exact natural PG (softmax); "pg": exact vanilla softmax policy gradient
    reward: str = "paper"  # discriminator reward, see the module docstring
    gail_weight: float = 1.0  # c, weight of the distribution-matching reward
    task_weight: float = 0.0  # weight of the task reward R_T; 0 = independent GAIL (Algorithm 2)


def agent_reward(game: MarkovGame, pis: list[np.ndarray], i: int, rho_E_i: np.ndarray, cfg: LearnerConfig):
    """Agent i's reward for this turn, in its induced MDP. Returns (P_i [S,A_i,S'], r_i [S,A_i])."""
    P_i, R_i = induced_mdp(game, pis, i)
    r_i = np.zeros(pis[i].shape)
    if cfg.gail_weight:
        rho_i = marginal_visitations(game, pis)[i]
        D = optimal_discriminator(rho_E_i, rho_i)  # Algorithm 2 line 8: discriminator at convergence
        r_i = r_i + cfg.gail_weight * discriminator_reward(D, cfg.reward)
    if cfg.task_weight:
        r_i = r_i + cfg.task_weight * R_i
    return P_i, r_i


def policy_step(game: MarkovGame, pis: list[np.ndarray], logits_i: np.ndarray, i: int, P_i: np.ndarray,
                r_i: np.ndarray, cfg: LearnerConfig) -> np.ndarray:
    """One exact policy-improvement step for agent i with the reward held fixed. Returns new logits [S, A_i]."""
    pi_i = pis[i]
    V, Q = evaluate_policy(P_i, r_i, pi_i, game.gamma)
    A = Q - V[:, None]  # advantage A_i(s, a_i)
    if cfg.update == "npg":
        # softmax NPG: pi' ∝ pi exp(eta A); its step at s does not shrink with rho(s), unlike vanilla PG
        return logits_i + cfg.eta * A
    if cfg.update == "pg":
        rho_s = state_visitation(game, pis)
        # d(b0 . V)/d logits[s, a] = rho(s) pi(a|s) A(s, a) / (1 - gamma)
        return logits_i + cfg.eta * rho_s[:, None] * pi_i * A / (1.0 - game.gamma)
    raise ValueError(f"unknown update {cfg.update!r}")


def agent_update(game: MarkovGame, logits: list[np.ndarray], i: int, rho_E_i: np.ndarray,
                 cfg: LearnerConfig) -> list[np.ndarray]:
    """Agent i's turn: refit its discriminator, then one exact policy step; the other agents are untouched."""
    pis = [softmax(z) for z in logits]
    P_i, r_i = agent_reward(game, pis, i, rho_E_i, cfg)
    new = list(logits)
    new[i] = policy_step(game, pis, logits[i], i, P_i, r_i, cfg)
    return new


def joint_metrics(game: MarkovGame, pis: list[np.ndarray], rho_E: list[np.ndarray] | None = None,
                  expert_pis: list[np.ndarray] | None = None) -> dict[str, float]:
    """Everything the experiments track about one joint policy, computed exactly (floats, and m [S, K]).

    Action-matching scores (J, L, L_bar, dist) need expert_pis; the mismatch (sum_i JS(rho_i, rho_E_i)) needs
    rho_E; the task return needs game.R.
    """
    rho_s = state_visitation(game, pis)
    out = {"min_rho": float(rho_s.min())}
    if expert_pis is not None:
        m = action_match_probs(pis, expert_pis)
        out.update(J=J_objective(rho_s, m), L=L_objective(rho_s, m), L_bar=L_bar(m),
                   dist=policy_distance(pis, expert_pis), m=m)  # m [S, K]: per-state match probabilities
    if rho_E is not None:
        js = [js_divergence(rho_s[:, None] * p, e) for p, e in zip(pis, rho_E)]
        out["mismatch"] = float(sum(js))
        out.update({f"js_{k}": v for k, v in enumerate(js)})
    if game.R is not None:
        out["task_return"] = task_return(game, pis)
    return out


def run_learners(game: MarkovGame, rho_E: list[np.ndarray] | None, expert_pis: list[np.ndarray] | None,
                 init_logits: list[np.ndarray], n_rounds: int, cfg: LearnerConfig,
                 record_every: int = 1) -> dict[str, np.ndarray]:
    """K independent learners taking turns (agent 0, 1, ..., K-1, 0, ...) for n_rounds rounds.

    rho_E[i] [S, A_i]: agent i's target marginal (its demonstrations; None when cfg.gail_weight = 0);
    expert_pis[i]: the policy that generated them, used only to score J, L and the distance. Metrics are recorded after every
    `record_every` single-agent updates (and at update 0). Returns {metric: array over records} plus
    "update" (the update index) and "logits_final".
    """
    K = game.n_agents
    logits = [np.array(z, float) for z in init_logits]
    rows, steps = [], []
    n_updates = n_rounds * K
    for u in range(n_updates + 1):
        if u % record_every == 0 or u == n_updates:
            rows.append(joint_metrics(game, [softmax(z) for z in logits], rho_E, expert_pis))
            steps.append(u)
        if u < n_updates:
            logits = agent_update(game, logits, u % K, None if rho_E is None else rho_E[u % K], cfg)
    hist = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    hist["update"] = np.array(steps)
    hist["logits_final"] = logits
    return hist


def random_logits(game: MarkovGame, rng: np.random.Generator, scale: float = 2.0) -> list[np.ndarray]:
    """A random initial joint policy: i.i.d. Gaussian logits per agent, state and action."""
    return [scale * rng.standard_normal((game.n_states, A)) for A in game.n_actions]


def expert_marginals(game: MarkovGame, expert_pis: list[np.ndarray]) -> list[np.ndarray]:
    """Demonstrations in the exact limit: expert i's marginal rho_E_i(s, a_i) under its own joint policy."""
    return marginal_visitations(game, expert_pis)


# ----------------------------------------------------------------------------- Theorem 3


def best_response_gain(game: MarkovGame, pis: list[np.ndarray], i: int, r_i: np.ndarray) -> float:
    """max_{pi_i'} V_i(pi_i', pi_-i) - V_i(pi_i, pi_-i) for agent i's reward r_i[s, a_i], normalised.

    0 (to solver precision) iff pi_i is a best response, i.e. no unilateral deviation pays.
    """
    P_i, _ = induced_mdp(game, pis, i)
    V, _ = evaluate_policy(P_i, r_i, pis[i], game.gamma)
    V_star, _ = best_response(P_i, r_i, game.gamma)
    return float((1.0 - game.gamma) * game.b0 @ (V_star - V))


def mixed_reward(game: MarkovGame, pis: list[np.ndarray], i: int, rho_E_i: np.ndarray, lam: float,
                 kind: str = "paper") -> np.ndarray:
    """R_T + lambda R_I,i in agent i's induced MDP, R_I,i the converged discriminator reward at pis. [S, A_i]"""
    _, R_i = induced_mdp(game, pis, i)
    D = optimal_discriminator(rho_E_i, marginal_visitations(game, pis)[i])
    return R_i + lam * discriminator_reward(D, kind)
