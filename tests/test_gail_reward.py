"""The three forms of the GAIL reward (algos/dm2.py, docs/dm2.md): the absorbing state's closed forms
against explicit zero-observation padding to the time limit, and the incentive each form gives."""
from __future__ import annotations

import pytest
import torch

from dm2_repro.algos import make_learner
from dm2_repro.algos.dm2 import (DM2, EpisodeRows, absorbing_return, absorbing_steps, add_at_last_step,
                                 discriminator_loss, gail_reward, real_steps, sample_real_steps)
from tests.fixtures import SMALL_SPEC as SPEC, fake_demo, padded_batch, small_hp

LIMIT = SPEC.episode_limit  # 6


def discounted_returns(r, gamma):
    """r[B, T, K] -> G_t = sum_{j >= t} gamma^(j - t) r_j, [B, T, K]."""
    G, out = torch.zeros_like(r[:, 0]), torch.zeros_like(r)
    for t in reversed(range(r.shape[1])):
        G = r[:, t] + gamma * G
        out[:, t] = G
    return out


def test_absorbing_terminal_term_equals_explicit_padding_to_the_limit():
    """Per-step rewards z on real steps plus the closed-form terminal term give, at every real step, the same
    discounted return as the episode padded to the limit with z(absorbing) on every padded step; a
    time-limit end (length = limit) gets no absorbing steps."""
    gamma, K = 0.9, 2
    lengths = torch.tensor([2, 6, 4, 1])
    g = torch.Generator().manual_seed(0)
    z_real = torch.randn(4, LIMIT, K, generator=g)
    z_abs = torch.tensor([-1.5, 0.7])
    mask = (torch.arange(LIMIT)[None] < lengths[:, None]).float()
    closed = add_at_last_step(z_real * mask[..., None],
                              absorbing_return(z_abs, absorbing_steps(lengths, LIMIT), gamma), lengths)
    explicit = torch.where(mask.bool()[..., None], z_real, z_abs.expand(4, LIMIT, K))  # padded to the limit
    G_closed, G_explicit = discounted_returns(closed, gamma), discounted_returns(explicit, gamma)
    for b, L in enumerate(lengths.tolist()):
        torch.testing.assert_close(G_closed[b, :L], G_explicit[b, :L])
    assert absorbing_steps(lengths, LIMIT).tolist() == [4, 0, 2, 5]
    assert absorbing_steps(lengths, None).tolist() == [0, 0, 0, 0]


def test_absorbing_discriminator_data_equal_explicit_padding_to_the_limit():
    """The discriminator loss on packed real steps + one weighted absorbing row per agent equals the loss on
    the episodes padded to the limit with zero observations (every padded step real); the absorbing share
    is the padded steps' share; draws of the gradient penalty hit the absorbing row at that share."""
    torch.manual_seed(0)
    K, E, d = 2, 5, 3
    learner = DM2(SPEC, small_hp(), demo=fake_demo())
    x = torch.randn(K, E, LIMIT, d)
    lengths = torch.tensor([[1, 6, 3, 2, 5], [4, 4, 6, 1, 2]])  # [K, E]: agent-specific lengths
    mask = (torch.arange(LIMIT)[None, None] < lengths[..., None]).float()
    packed = EpisodeRows(x * mask[..., None], mask, LIMIT).sample(torch.arange(E).expand(K, E))
    padded = real_steps(x * mask[..., None], torch.ones(K, E, LIMIT))  # zeros after the end, all counted
    other = real_steps(torch.randn(K, 4, LIMIT, d), torch.ones(K, 4, LIMIT))
    gen = torch.Generator().manual_seed(1)
    _, s_packed = discriminator_loss(learner.D, packed, other, 0.0, gen)
    _, s_padded = discriminator_loss(learner.D, padded, other, 0.0, gen)
    torch.testing.assert_close(s_packed["disc_bce"], s_padded["disc_bce"])
    # accuracies are over real steps only (comparable across forms): the padded data's real steps
    real = real_steps(x * mask[..., None], mask)
    _, s_real = discriminator_loss(learner.D, real, other, 0.0, gen)
    torch.testing.assert_close(s_packed["disc_expert_acc"], s_real["disc_expert_acc"])
    share = (LIMIT - lengths).sum(1).float() / (E * LIMIT)
    torch.testing.assert_close(s_packed["disc_expert_absorbing_share"], share)
    assert (s_padded["disc_expert_absorbing_share"] == 0).all()  # no absorbing row there
    draws = sample_real_steps(packed, 20_000, torch.Generator().manual_seed(2))  # [K, n, d]
    hit = (draws.abs().sum(-1) == 0).float().mean(1)
    assert torch.allclose(hit, share, atol=0.02)


def test_absorbing_costs_one_row_per_agent_not_the_padding():
    x, mask = torch.randn(2, 8, LIMIT, 3), torch.zeros(2, 8, LIMIT)
    mask[:, :, 0] = 1  # every episode one step long: 5 absorbing steps each
    rows = EpisodeRows(x, mask, LIMIT)
    steps = rows.sample(torch.arange(8).expand(2, 8))
    assert steps.rows.shape[1] == 8 + 1 and steps.valid[:, -1].tolist() == [40.0, 40.0]
    assert EpisodeRows(x, mask).sample(torch.arange(8).expand(2, 8)).rows.shape[1] == 8  # logit/paper: no row


class FixedD(torch.nn.Module):
    """A fixed discriminator: z = -2 on the absorbing (zero) observation, -0.5 on every other one (the agent
    is told apart from the expert a little on real steps, clearly on the absorbing state, as when the
    expert's episodes are long and so hold no absorbing steps)."""

    def forward(self, x):
        return torch.where(x.abs().sum(-1) == 0, torch.tensor(-2.0), torch.tensor(-0.5))


@pytest.mark.parametrize("form, short_wins", [("logit", True), ("absorbing", False), ("paper", False)])
def test_which_form_pays_a_short_episode_more(form, short_wins):
    """Hand-computed, gamma = 0.9, limit 6: a 2-step lost game against a 6-step (time-limit) one.
    logit:     short -0.5 (1 + 0.9) = -0.95 > long -0.5 (1 - 0.9^6) / 0.1 = -2.343: paid to end early.
    absorbing: short -0.95 + 0.9^2 (-2) (1 - 0.9^4) / 0.1 = -6.521 < long -2.343.
    paper:     softplus(-0.5) = 0.474 per step: short 0.901 < long 2.221 (paid to survive)."""
    gamma = 0.9
    x = torch.ones(1, 2, LIMIT, 3)  # [K=1, B=2, T, d], nonzero observations
    lengths = torch.tensor([2, LIMIT])
    mask = (torch.arange(LIMIT)[None] < lengths[:, None]).float().unsqueeze(0)  # [1, 2, T]
    r = gail_reward(FixedD(), x, mask, form).permute(1, 2, 0)  # [B, T, K]
    if form == "absorbing":
        z_abs = FixedD()(torch.zeros(1, 3))
        r = add_at_last_step(r, absorbing_return(z_abs, absorbing_steps(lengths, LIMIT), gamma), lengths)
    G = discounted_returns(r, gamma)[:, 0, 0]  # [B]
    expected = {"logit": (-0.95, -2.3428), "absorbing": (-6.5208, -2.3428), "paper": (0.9007, 2.2213)}[form]
    torch.testing.assert_close(G, torch.tensor(expected), atol=1e-3, rtol=0)
    assert (G[0] > G[1]) == short_wins


def _ppo_reward(learner, batch):
    seen = {}
    learner.ppo_update = lambda b, r: seen.update(r=r) or {}  # capture the reward PPO is given
    stats = learner.update(batch)
    return seen["r"], stats


def test_update_pays_the_absorbing_term_at_the_last_real_step_only():
    torch.manual_seed(0)
    hp = small_hp(gail_coef=0.3)
    batch = padded_batch([6, 2, 4])
    forms = {}
    for form in ("logit", "absorbing", "paper"):
        torch.manual_seed(0)
        learner = make_learner("dm2", SPEC, hp, demo=fake_demo(), gail_reward=form)
        assert learner.gail_form == form
        forms[form], stats = _ppo_reward(learner, batch)
        assert {"z_absorbing", "z_absorbing/0", "agent_ep_length_mean", "demo_ep_length_mean",
                "disc_expert_absorbing_share/1", "disc_agent_absorbing_share"} <= set(stats)
        assert stats["agent_ep_length_mean"] == pytest.approx(4.0)
    # the same seed trains the same discriminator under logit and paper (no absorbing data), so their
    # rewards differ only by the transform of z
    z_logit = (forms["logit"] - batch.reward[..., None]) / 0.3
    torch.testing.assert_close((forms["paper"] - batch.reward[..., None]) / 0.3,
                               torch.nn.functional.softplus(z_logit) * batch.mask[..., None])
    # absorbing: differs from logit's form at the last real step of games shorter than the limit only
    torch.manual_seed(0)
    learner = make_learner("dm2", SPEC, hp, demo=fake_demo(), gail_reward="absorbing")
    r, _ = _ppo_reward(learner, batch)
    x_A, m_A = learner.agent_observations(batch)
    per_step = batch.reward[..., None] + 0.3 * gail_reward(learner.D, x_A, m_A).permute(1, 2, 0)
    diff = r - per_step
    z_abs = learner.z_absorbing()
    for b, L in enumerate([6, 2, 4]):
        n = LIMIT - L
        expected = 0.3 * z_abs * 0.99 * (1 - 0.99 ** n) / (1 - 0.99)
        torch.testing.assert_close(diff[b, L - 1], expected)
        diff[b, L - 1] = 0
    assert (diff.abs() < 1e-6).all()


def test_discriminator_learns_the_absorbing_state_from_the_experts_episode_lengths():
    """Expert games always run to the limit, the agent's end early: the absorbing state is the agent's, z(abs) < 0.
    Expert games end early, the agent's run to the limit: z(abs) > 0 (ending like the expert is paid)."""
    signs = {}
    for expert_short in (False, True):
        torch.manual_seed(0)
        demo = fake_demo(E=8)
        L = 2 if expert_short else LIMIT
        demo.mask[:] = 0
        demo.mask[:, :L] = 1
        learner = DM2(SPEC, small_hp(gail_epochs=60, gail_lr=3e-3, demo_episodes=8), demo=demo,
                      gail_reward="absorbing")
        batch = padded_batch([LIMIT] * 4 if expert_short else [2] * 4, seed=3)
        x_A, m_A = learner.agent_observations(batch)
        learner.update_discriminators(x_A, m_A)
        signs[expert_short] = learner.z_absorbing()
    assert (signs[False] < 0).all() and (signs[True] > 0).all()


def test_gail_only_and_sil_take_the_form():
    for algo in ("gail_only", "sil", "dm2_state_action", "bc_dm2"):
        demo = fake_demo()
        learner = make_learner(algo, SPEC, small_hp(), demo=demo, gail_reward="paper")
        assert learner.gail_form == "paper"
    assert not hasattr(make_learner("ippo", SPEC, small_hp(), gail_reward="paper"), "gail_form")
    with pytest.raises(ValueError, match="unknown gail_reward 'softplus'"):
        make_learner("dm2", SPEC, small_hp(), demo=fake_demo(), gail_reward="softplus")
