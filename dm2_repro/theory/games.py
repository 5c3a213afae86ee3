"""Exact tabular machinery for finite K-agent Markov games (paper Sections 3-4).

Everything is computed in closed form by solving linear systems; the one sampler,
`sample_visitation`, exists only to cross-check the exact visitations in the tests.

Conventions (shapes in comments use these letters):
  S states; agent i has A_i actions; a joint action is a = (a_1, ..., a_K).
  game.T[s, a_1, ..., a_K, s']  transition probabilities T(s' | s, a)
  pi_i[s, a_i]                  agent i's policy pi_i(a_i | s); a joint policy `pis` is a list of K such
  rho(s)   = (1 - gamma) sum_t gamma^t P(s_t = s)   (normalised: sums to one, as in the paper)
  rho(s,a) = rho(s) pi(a | s);  rho_i(s, a_i) = rho(s) pi_i(a_i | s)  (agent i's marginal)
Values are reported normalised, (1 - gamma) E[sum_t gamma^t r_t], so they live on the reward scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import numpy as np


@dataclass(frozen=True)
class MarkovGame:
    T: np.ndarray  # [S, A_1, ..., A_K, S'] transition probabilities
    b0: np.ndarray  # [S] initial state distribution
    gamma: float
    R: np.ndarray | None = None  # [S, A_1, ..., A_K] shared task reward R_T, if the game has a task
    name: str = "game"
    state_labels: tuple[str, ...] = field(default=())

    @property
    def n_states(self) -> int:
        return self.T.shape[0]

    @property
    def n_agents(self) -> int:
        return self.T.ndim - 2

    @property
    def n_actions(self) -> tuple[int, ...]:
        return tuple(self.T.shape[1:-1])

    def with_reward(self, R: np.ndarray, name: str | None = None) -> "MarkovGame":
        return MarkovGame(self.T, self.b0, self.gamma, R, name or self.name, self.state_labels)

    def with_b0(self, b0: np.ndarray) -> "MarkovGame":
        return MarkovGame(self.T, np.asarray(b0, float), self.gamma, self.R, self.name, self.state_labels)


# ----------------------------------------------------------------------------- policies


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def one_hot_policy(actions: np.ndarray, n_actions: int) -> np.ndarray:
    """Deterministic policy [S, A] from one action per state [S]."""
    pi = np.zeros((len(actions), n_actions))
    pi[np.arange(len(actions)), actions] = 1.0
    return pi


def uniform_policies(game: MarkovGame) -> list[np.ndarray]:
    return [np.full((game.n_states, A), 1.0 / A) for A in game.n_actions]


def joint_policy(pis: list[np.ndarray]) -> np.ndarray:
    """pi(a | s) = prod_i pi_i(a_i | s): agents act independently given the state. -> [S, A_1, ..., A_K]"""
    K = len(pis)
    out = np.ones((pis[0].shape[0],) + (1,) * K)
    for i, pi_i in enumerate(pis):
        shape = [pi_i.shape[0]] + [1] * K
        shape[1 + i] = pi_i.shape[1]
        out = out * pi_i.reshape(shape)
    return out


def others_policy_weights(pis: list[np.ndarray], i: int) -> np.ndarray:
    """prod_{j != i} pi_j(a_j | s) broadcast over the joint-action axes, agent i's axis of size 1."""
    ones_i = [np.ones((pis[i].shape[0], 1)) if j == i else p for j, p in enumerate(pis)]
    return joint_policy(ones_i)  # [S, A_1, .., 1 (agent i), .., A_K]


# ----------------------------------------------------------------------------- visitation


def state_transition_matrix(game: MarkovGame, pis: list[np.ndarray]) -> np.ndarray:
    """P_pi[s, s'] = sum_a pi(a | s) T(s' | s, a)."""
    S = game.n_states
    pi_joint = joint_policy(pis).reshape(S, -1)  # [S, |A|]
    return np.einsum("sa,sat->st", pi_joint, game.T.reshape(S, -1, S))


def discounted_visitation(P: np.ndarray, b0: np.ndarray, gamma: float) -> np.ndarray:
    """rho = (1 - gamma) b0^T (I - gamma P)^-1, i.e. solve (I - gamma P)^T rho = (1 - gamma) b0. -> [S]"""
    S = P.shape[0]
    return np.linalg.solve(np.eye(S) - gamma * P.T, (1.0 - gamma) * b0)


def state_visitation(game: MarkovGame, pis: list[np.ndarray]) -> np.ndarray:
    return discounted_visitation(state_transition_matrix(game, pis), game.b0, game.gamma)


def state_action_visitation(game: MarkovGame, pis: list[np.ndarray]) -> np.ndarray:
    """Joint rho(s, a) = rho(s) prod_i pi_i(a_i | s). -> [S, A_1, ..., A_K]"""
    rho_s = state_visitation(game, pis)
    return rho_s.reshape((-1,) + (1,) * game.n_agents) * joint_policy(pis)


def marginal_visitations(game: MarkovGame, pis: list[np.ndarray]) -> list[np.ndarray]:
    """Per-agent marginals rho_i(s, a_i) = rho(s) pi_i(a_i | s), one [S, A_i] array per agent."""
    rho_s = state_visitation(game, pis)
    return [rho_s[:, None] * pi_i for pi_i in pis]


# ----------------------------------------------------------------------------- one agent's MDP


def induced_mdp(game: MarkovGame, pis: list[np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The single-agent MDP agent i faces while the others keep pi_{-i} fixed.

    Returns P_i[s, a_i, s'] = sum_{a_-i} pi_{-i}(a_-i | s) T(s' | s, a) and the task reward marginalised the
    same way, R_i[s, a_i] (None if the game has no task reward).
    """
    K = game.n_agents
    w = others_policy_weights(pis, i)  # [S, A_1, .., 1, .., A_K]
    other_axes = tuple(1 + j for j in range(K) if j != i)
    P_i = (game.T * w[..., None]).sum(axis=other_axes)  # [S, A_i, S']
    R_i = None if game.R is None else (game.R * w).sum(axis=other_axes)  # [S, A_i]
    return P_i, R_i


def evaluate_policy(P_i: np.ndarray, r_i: np.ndarray, pi_i: np.ndarray, gamma: float):
    """Exact V[s], Q[s, a_i] (unnormalised discounted sums) of pi_i in the MDP (P_i, r_i)."""
    S = P_i.shape[0]
    P_pi = np.einsum("sa,sat->st", pi_i, P_i)
    r_pi = (pi_i * r_i).sum(axis=1)
    V = np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)
    Q = r_i + gamma * P_i @ V
    return V, Q


def best_response(P_i: np.ndarray, r_i: np.ndarray, gamma: float, max_iter: int = 1000):
    """Optimal deterministic policy of a finite MDP by policy iteration (exact: stops when greedy is stable).

    Returns (V*[s], actions[s]). A deterministic best response always exists, so this is max over all pi_i.
    """
    S, A, _ = P_i.shape
    actions = r_i.argmax(axis=1)
    for _ in range(max_iter):
        V, Q = evaluate_policy(P_i, r_i, one_hot_policy(actions, A), gamma)
        # keep the current action on ties so the loop cannot cycle between equally good policies
        improve = Q.max(axis=1) > Q[np.arange(S), actions] + 1e-12 * (1.0 + np.abs(V))
        if not improve.any():
            return V, actions
        actions = np.where(improve, Q.argmax(axis=1), actions)
    raise RuntimeError("policy iteration did not converge")


def normalised_return(game: MarkovGame, V: np.ndarray) -> float:
    """(1 - gamma) b0 . V: the value on the per-step reward scale."""
    return float((1.0 - game.gamma) * game.b0 @ V)


def task_return(game: MarkovGame, pis: list[np.ndarray]) -> float:
    """Normalised team return of the joint policy under the task reward R_T."""
    rho_sa = state_action_visitation(game, pis)
    return float((rho_sa * game.R).sum())


def joint_optimal_policy(game: MarkovGame, R: np.ndarray | None = None) -> list[np.ndarray]:
    """A 'co-trained' joint expert: the optimal deterministic joint policy for the team reward.

    Solved as one MDP over joint actions (policy iteration), then each agent keeps its own component of the
    optimal joint action. In a team game the global optimum is a Nash equilibrium (no unilateral deviation can
    beat the best joint return), so these experts satisfy Theorem 3's premise.
    """
    R = game.R if R is None else R
    S, n_actions = game.n_states, game.n_actions
    P_joint = game.T.reshape(S, -1, S)  # [S, |A|, S']
    _, joint_actions = best_response(P_joint, R.reshape(S, -1), game.gamma)
    per_agent = np.unravel_index(joint_actions, n_actions)  # K arrays of [S]
    return [one_hot_policy(a_i, A_i) for a_i, A_i in zip(per_agent, n_actions)]


# ----------------------------------------------------------------------------- Monte Carlo check


def sample_visitation(game: MarkovGame, pis: list[np.ndarray], n_samples: int, rng: np.random.Generator):
    """Monte Carlo estimate of rho(s) and rho_i(s, a_i), for testing the exact solver.

    The normalised discounted visitation is the law of s_tau with tau ~ Geometric: P(tau = t) = (1-gamma) gamma^t,
    so each sample runs one trajectory up to its own stopping time and records (s_tau, a_tau).
    """
    S, K = game.n_states, game.n_agents
    tau = rng.geometric(1.0 - game.gamma, size=n_samples) - 1  # support {0, 1, ...}
    s = rng.choice(S, size=n_samples, p=game.b0)
    T_flat = game.T.reshape(S, -1, S)
    rho_s = np.zeros(S)
    rho_i = [np.zeros_like(p) for p in pis]
    for t in range(int(tau.max()) + 1):
        acts = [_sample_rows(pis[i][s], rng) for i in range(K)]
        stop = tau == t
        np.add.at(rho_s, s[stop], 1.0)
        for i in range(K):
            np.add.at(rho_i[i], (s[stop], acts[i][stop]), 1.0)
        a_flat = np.ravel_multi_index(acts, game.n_actions)
        s = _sample_rows(T_flat[s, a_flat], rng)
    return rho_s / n_samples, [r / n_samples for r in rho_i]


def _sample_rows(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of probs [N, C]."""
    u = rng.random((probs.shape[0], 1))
    return np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), probs.shape[1] - 1)


# ----------------------------------------------------------------------------- games


def random_game(n_states: int, n_actions: tuple[int, ...], gamma: float = 0.9, seed: int = 0,
                concentration: float = 1.0) -> MarkovGame:
    """Random Markov game: Dirichlet transitions (full support, so every policy visits every state:
    Condition 1 holds), uniform start, and a random team reward R_T ~ U(0, 1) to train co-trained experts."""
    rng = np.random.default_rng(seed)
    shape = (n_states,) + tuple(n_actions)
    T = rng.dirichlet(np.full(n_states, concentration), size=shape)  # [S, A_1..A_K, S']
    R = rng.random(shape)
    b0 = np.full(n_states, 1.0 / n_states)
    name = f"random S={n_states} A={'x'.join(map(str, n_actions))}"
    return MarkovGame(T, b0, gamma, R, name, tuple(f"s{k}" for k in range(n_states)))


# The four-tile gridworld of Section 5:   A B
#                                         C D      one agent per tile, two agents.
# Each tile has one horizontal and one vertical neighbour, so three actions cover every move and no two
# actions have the same effect (with up/down/left/right, bumping a wall would duplicate "stay", and
# action-level distribution matching would then penalise behaviourally identical demonstrators).
TILES = ("A", "B", "C", "D")
GRID_ACTIONS = ("stay", "horizontal", "vertical")
_NEIGHBOUR = {  # _NEIGHBOUR[action][tile]
    0: {0: 0, 1: 1, 2: 2, 3: 3},
    1: {0: 1, 1: 0, 2: 3, 3: 2},  # A<->B, C<->D
    2: {0: 2, 2: 0, 1: 3, 3: 1},  # A<->C, B<->D
}
GRID_STATES = tuple((p1, p2) for p1 in range(4) for p2 in range(4) if p1 != p2)  # 12 states (tile_1, tile_2)
_STATE_INDEX = {s: k for k, s in enumerate(GRID_STATES)}


def grid_state_index(tile_1: str, tile_2: str) -> int:
    return _STATE_INDEX[(TILES.index(tile_1), TILES.index(tile_2))]


def _move(tile: int, action: int) -> int:
    return _NEIGHBOUR[action][tile]


def _grid_step(p1: int, p2: int, e1: int, e2: int) -> tuple[int, int]:
    """Deterministic move given executed actions; no two agents ever share a tile.

    Moving into a tile the other agent leaves is fine; two agents aiming at one tile (which covers walking
    into an agent that stays) or swapping tiles both bounce back to where they were.
    """
    q1, q2 = _move(p1, e1), _move(p2, e2)
    if q1 == q2 or (q1 == p2 and q2 == p1):
        return p1, p2
    return q1, q2


def four_tile_gridworld(slip: float = 0.1, gamma: float = 0.9, b0: np.ndarray | None = None) -> MarkovGame:
    """The two-agent four-tile gridworld. With probability `slip` an agent's executed action is uniformly
    random; slip > 0 makes every state reachable from every start (Condition 1), slip = 0 is deterministic."""
    S, A = len(GRID_STATES), len(GRID_ACTIONS)
    slip_probs = (1.0 - slip) * np.eye(A) + slip / A  # [intended, executed]
    T = np.zeros((S, A, A, S))
    for s, (p1, p2) in enumerate(GRID_STATES):
        for e1, e2 in product(range(A), range(A)):
            s_next = _STATE_INDEX[_grid_step(p1, p2, e1, e2)]
            T[s, :, :, s_next] += np.outer(slip_probs[:, e1], slip_probs[:, e2])
    b0 = np.full(S, 1.0 / S) if b0 is None else np.asarray(b0, float)
    labels = tuple(TILES[p1] + TILES[p2] for p1, p2 in GRID_STATES)
    return MarkovGame(T, b0, gamma, None, f"four-tile gridworld (slip={slip})", labels)


def grid_state_reward(game: MarkovGame, good_states: list[tuple[str, str]]) -> np.ndarray:
    """Task reward R_T(s, a) = 1 while the agents stand on one of `good_states` (tile_1, tile_2)."""
    R = np.zeros(game.T.shape[:-1])
    for t1, t2 in good_states:
        R[grid_state_index(t1, t2)] = 1.0
    return R


def occupy_a_reward(game: MarkovGame, agent: int) -> np.ndarray:
    """Agent `agent` holds tile A while the other agent waits on the opposite tile D."""
    return grid_state_reward(game, [("A", "D")] if agent == 0 else [("D", "A")])


def diagonal_reward(game: MarkovGame) -> np.ndarray:
    """Coordination task with four equally good equilibria: stand on opposite corners (AD, DA, BC or CB)."""
    return grid_state_reward(game, [("A", "D"), ("D", "A"), ("B", "C"), ("C", "B")])
