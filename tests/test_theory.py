"""Exact tabular checks of the paper's theory (dm2_repro.theory). Pure numpy, no environment needed."""
from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
import pytest

from dm2_repro.theory import experiments as E
from dm2_repro.theory.gail import (LearnerConfig, agent_reward, best_response_gain, discriminator_reward,
                                   expert_marginals, gail_objective, js_divergence, mixed_reward,
                                   optimal_discriminator, random_logits, run_learners)
from dm2_repro.theory.games import (best_response, diagonal_reward, evaluate_policy, four_tile_gridworld,
                                    induced_mdp, joint_optimal_policy, marginal_visitations, one_hot_policy,
                                    random_game, sample_visitation, softmax, state_action_visitation,
                                    state_transition_matrix, state_visitation, uniform_policies)


def random_policies(game, seed):
    rng = np.random.default_rng(seed)
    return [softmax(z) for z in random_logits(game, rng, scale=1.0)]


# ----------------------------------------------------------------------------- exact visitation


@pytest.mark.parametrize("game", [random_game(4, (2, 3), gamma=0.8, seed=3),
                                  four_tile_gridworld(slip=0.2, gamma=0.8)], ids=["random", "gridworld"])
def test_visitation_is_a_distribution_and_matches_monte_carlo(game):
    pis = random_policies(game, seed=1)
    rho_s = state_visitation(game, pis)
    rho_i = marginal_visitations(game, pis)
    rho_sa = state_action_visitation(game, pis)
    assert rho_s.min() >= 0 and rho_s.sum() == pytest.approx(1.0, abs=1e-12)
    assert rho_sa.sum() == pytest.approx(1.0, abs=1e-12)
    for i, r in enumerate(rho_i):
        assert r.sum() == pytest.approx(1.0, abs=1e-12)
        other_axes = tuple(1 + j for j in range(game.n_agents) if j != i)
        np.testing.assert_allclose(rho_sa.sum(axis=other_axes), r, atol=1e-12)  # marginal of the joint
    # Bellman flow: rho = (1 - gamma) b0 + gamma P^T rho
    P = state_transition_matrix(game, pis)
    np.testing.assert_allclose(rho_s, (1 - game.gamma) * game.b0 + game.gamma * P.T @ rho_s, atol=1e-12)

    n = 200_000  # each entry has s.d. <= 0.5 / sqrt(n) ~ 0.0011
    mc_s, mc_i = sample_visitation(game, pis, n, np.random.default_rng(7))
    assert np.abs(mc_s - rho_s).max() < 0.006
    for r, m in zip(rho_i, mc_i):
        assert np.abs(m - r).max() < 0.006


def test_best_response_beats_every_deterministic_policy():
    game = random_game(3, (2, 2), gamma=0.9, seed=5)
    pis = random_policies(game, seed=2)
    P_i, R_i = induced_mdp(game, pis, 0)
    V_star, actions = best_response(P_i, R_i, game.gamma)
    best = max(game.b0 @ evaluate_policy(P_i, R_i, one_hot_policy(np.array(a), 2), game.gamma)[0]
               for a in product(range(2), repeat=3))
    assert game.b0 @ V_star == pytest.approx(best, abs=1e-12)
    assert best_response_gain(game, [one_hot_policy(actions, 2), pis[1]], 0, R_i) == pytest.approx(0, abs=1e-12)


# ----------------------------------------------------------------------------- discriminator and reward


def test_closed_form_discriminator_beats_perturbations():
    rng = np.random.default_rng(0)
    rho_E = rng.dirichlet(np.ones(12)).reshape(4, 3)
    rho_E[0, :2] = 0.0  # expert never takes these: D* = 0 there
    rho_E /= rho_E.sum()
    rho = rng.dirichlet(np.ones(12)).reshape(4, 3)
    D_star = optimal_discriminator(rho_E, rho)
    G_star = gail_objective(D_star, rho_E, rho)
    # at the optimum the GAIL objective equals 2 JS - log 4
    assert G_star == pytest.approx(2 * js_divergence(rho_E, rho) - np.log(4), abs=1e-12)
    logit = np.log(np.clip(D_star, 1e-300, None)) - np.log1p(-D_star)
    for _ in range(300):
        D = 1 / (1 + np.exp(-(logit + rng.normal(scale=rng.choice([1e-3, 0.1, 1.0]), size=logit.shape))))
        assert gail_objective(D, rho_E, rho) < G_star
    for _ in range(100):  # and arbitrary discriminators
        assert gail_objective(rng.random((4, 3)), rho_E, rho) < G_star


def test_reward_conventions():
    rho_E = np.array([[0.2, 0.0], [0.5, 0.3]])
    rho = np.array([[0.1, 0.4], [0.25, 0.25]])
    D = optimal_discriminator(rho_E, rho)
    # the paper's -log D_paper with D_paper = rho / (rho_E + rho) (it scores the agent) is our -log(1 - D)
    np.testing.assert_allclose(discriminator_reward(D, "paper"), -np.log(rho / (rho_E + rho)))
    assert discriminator_reward(D, "paper")[0, 1] == 0.0  # no reward where the expert never goes
    assert (discriminator_reward(D, "paper") >= 0).all()
    mask = rho_E > 0
    np.testing.assert_allclose(discriminator_reward(D, "logit")[mask], np.log(rho_E[mask] / rho[mask]))


def test_gail_policy_gradient_is_minus_js_gradient():
    """With D = D*, the exact policy gradient of E_{rho_i}[r] (r held fixed) is -grad 2 JS(rho_i, rho_E_i):
    so a policy step on the -log(1 - D) reward descends the GAIL objective (why this sign convention)."""
    game = random_game(4, (3, 2), gamma=0.85, seed=9)
    expert = joint_optimal_policy(game)
    rho_E = expert_marginals(game, expert)
    logits = random_logits(game, np.random.default_rng(3), scale=1.0)
    pis = [softmax(z) for z in logits]
    i = 0
    P_i, r_i = agent_reward(game, pis, i, rho_E[i], LearnerConfig())
    V, Q = evaluate_policy(P_i, r_i, pis[i], game.gamma)
    pg = state_visitation(game, pis)[:, None] * pis[i] * (Q - V[:, None])  # d E_rho[r] / d logits_i

    def two_js(z_i):
        new = [softmax(z_i), pis[1]]
        return 2 * js_divergence(marginal_visitations(game, new)[i], rho_E[i])

    h = 1e-6
    fd = np.zeros_like(logits[i])
    for idx in np.ndindex(fd.shape):
        e = np.zeros_like(fd)
        e[idx] = h
        fd[idx] = (two_js(logits[i] + e) - two_js(logits[i] - e)) / (2 * h)
    np.testing.assert_allclose(fd, -pg, atol=1e-7)


# ----------------------------------------------------------------------------- convergence (Theorem 2)


def test_independent_gail_converges_to_the_joint_expert():
    game = random_game(5, (3, 3), gamma=0.9, seed=11)
    expert = joint_optimal_policy(game)
    rho_E = expert_marginals(game, expert)
    rng = np.random.default_rng(123)
    for _ in range(6):
        h = run_learners(game, rho_E, expert, random_logits(game, rng), 60, LearnerConfig(eta=0.3))
        assert h["dist"][0] > 0.3  # starts far from the expert
        assert h["dist"][-1] < 0.01
        assert h["J"][-1] > 2 - 1e-4 and h["mismatch"][-1] < 1e-4
        assert np.all(h["J"] >= h["L"] - 1e-12)  # Theorem 1
        assert np.all(h["J"] <= 2 + 1e-12) and np.all(h["J"] >= 1 - 1e-12)  # Lemma 4: K-1 <= J <= K


def test_incompatible_demonstrations_keep_a_residual_mismatch():
    game = four_tile_gridworld(slip=0.1, gamma=0.9)
    team_1, team_2 = E.gridworld_teams(game)
    m1, m2 = expert_marginals(game, team_1), expert_marginals(game, team_2)
    bound = E.exclusivity_lower_bound(game, team_1, team_2)
    assert bound > 0.05
    rng = np.random.default_rng(5)
    cfg = LearnerConfig(eta=0.3)
    for _ in range(3):
        z0 = random_logits(game, rng)
        bad = run_learners(game, [m1[0], m2[1]], [team_1[0], team_2[1]], z0, 40, cfg)
        good = run_learners(game, [m1[0], m1[1]], team_1, z0, 40, cfg)
        assert bad["mismatch"].min() >= bound - 1e-9  # the certificate holds at every update
        assert bad["mismatch"][-1] > 0.3
        assert good["mismatch"][-1] < 1e-4


# ----------------------------------------------------------------------------- Theorem 3


def test_theorem3_expert_is_nash_for_mixed_reward_and_check_can_fail():
    game = four_tile_gridworld(slip=0.1, gamma=0.9)
    game = game.with_reward(diagonal_reward(game))
    expert = joint_optimal_policy(game)
    rho_E = expert_marginals(game, expert)
    uniform = uniform_policies(game)
    for lam in E.LAMBDAS:
        for i in range(2):
            assert abs(best_response_gain(game, expert, i, mixed_reward(game, expert, i, rho_E[i], lam))) < 1e-9
            assert best_response_gain(game, uniform, i, mixed_reward(game, uniform, i, rho_E[i], lam)) > 0.05


def test_theorem3_on_a_random_game():
    game = random_game(4, (2, 3), gamma=0.9, seed=21)
    expert = joint_optimal_policy(game)
    rho_E = expert_marginals(game, expert)
    perturbed = [expert[0], np.roll(expert[1], 1, axis=1)]  # agent 2 plays a wrong action everywhere
    for lam in (0.0, 0.5, 5.0):
        for i in range(2):
            assert abs(best_response_gain(game, expert, i, mixed_reward(game, expert, i, rho_E[i], lam))) < 1e-9
        assert best_response_gain(game, perturbed, 1, mixed_reward(game, perturbed, 1, rho_E[1], lam)) > 1e-3


# ----------------------------------------------------------------------------- experiment + figure plumbing


def test_quick_run_and_figure(tmp_path):
    from dm2_repro.theory.plot import make_figure

    paths = E.run_all(str(tmp_path / "results"), seed=0, quick=True)
    for panel in E.PANELS:
        df = pd.read_csv(paths[panel])
        assert list(df.columns) == ["curve", "step", "mean", "se", "n_seeds"] and len(df) > 0
    out = make_figure(str(tmp_path / "results"), str(tmp_path / "figures"))
    assert [p.rsplit(".", 1)[1] for p in out] == ["png", "pdf", "csv"]
    fig_csv = pd.read_csv(out[2])
    assert list(fig_csv.columns) == ["figure", "panel", "curve", "step", "mean", "se", "n_seeds"]
    assert set(fig_csv["panel"]) == set(E.PANELS)
