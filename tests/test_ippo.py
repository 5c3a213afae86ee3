import math

import torch

from dm2_repro.algos.ippo import gae, normalise_advantage, ppo_loss


def test_gae_masks_padding_and_bootstraps_only_time_limit_ends():
    # two episodes of length 2 padded to T=3: the first ends by the game (no bootstrap),
    # the second by the time limit (bootstrap from V(final obs) = 3.0); value 7.0 is padding garbage
    reward = torch.tensor([[1.0, 2.0, 5.0], [1.0, 2.0, 5.0]]).unsqueeze(-1)  # [B, T, K=1]
    value = torch.tensor([[0.5, 1.0, 3.0, 7.0], [0.5, 1.0, 3.0, 7.0]]).unsqueeze(-1)
    terminated = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    adv, ret = gae(reward, value, terminated, mask, gamma=0.9, lam=0.5)
    # by hand: ep0: d1 = 2 - 1 = 1; d0 = 1 + .9*1 - .5 = 1.4; A0 = 1.4 + .45*1 = 1.85
    #          ep1: d1 = 2 + .9*3 - 1 = 3.7; A0 = 1.4 + .45*3.7 = 3.065
    torch.testing.assert_close(adv.squeeze(-1), torch.tensor([[1.85, 1.0, 0.0], [3.065, 3.7, 0.0]]))
    torch.testing.assert_close(ret.squeeze(-1)[:, :2], torch.tensor([[2.35, 2.0], [3.565, 4.7]]))


def test_gae_padding_never_leaks_into_real_steps():
    reward = torch.tensor([[1.0, 2.0, 0.0]]).unsqueeze(-1)
    terminated = torch.tensor([[0.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    a1, _ = gae(reward, torch.tensor([[[0.5], [1.0], [3.0], [7.0]]]), terminated, mask, 0.9, 0.5)
    a2, _ = gae(reward + torch.tensor([[0.0, 0.0, 100.0]]).unsqueeze(-1),
                torch.tensor([[[0.5], [1.0], [3.0], [-50.0]]]), terminated, mask, 0.9, 0.5)
    torch.testing.assert_close(a1, a2)


def test_ppo_loss_tiny_case_by_hand():
    f = lambda *xs: torch.tensor(xs).view(1, -1, 1)  # noqa: E731  [B=1, T, K=1]
    mask = torch.tensor([[1.0, 0.0]])  # the second step is padding with garbage values
    total, parts = ppo_loss(logp=f(math.log(0.5), 9.0), logp_old=f(math.log(0.4), -9.0), adv=f(2.0, 100.0),
                            entropy=f(1.0, 50.0), value=f(1.0, 40.0), value_old=f(0.5, 0.0), ret=f(3.0, -40.0),
                            mask=mask, clip=0.2, entropy_coef=0.01, value_loss_coef=0.5, huber_delta=10.0)
    # ratio 1.25 clipped to 1.2 -> policy loss -2.4; value: unclipped err 2.0 -> 2.0, clipped (0.7) err 2.3 -> 2.645
    torch.testing.assert_close(parts["policy_loss"], torch.tensor([-2.4]))
    torch.testing.assert_close(parts["value_loss"], torch.tensor([2.645]))
    torch.testing.assert_close(total, torch.tensor([-2.4 + 0.5 * 2.645 - 0.01]))


def test_ppo_loss_of_agent_k_depends_only_on_agent_k():
    torch.manual_seed(0)
    args = [torch.randn(2, 4, 3, requires_grad=True) for _ in range(7)]
    total, _ = ppo_loss(*args, mask=torch.ones(2, 4), clip=0.2, entropy_coef=0.01, value_loss_coef=0.5,
                        huber_delta=10.0)
    total[1].backward()
    for a in args:
        if a.grad is not None:
            assert a.grad[..., [0, 2]].abs().sum() == 0


def test_advantage_normalised_per_agent_over_real_steps():
    adv = torch.randn(3, 5, 2) * torch.tensor([1.0, 10.0]) + torch.tensor([5.0, -3.0])
    mask = torch.ones(3, 5)
    mask[0, 3:] = 0
    out = normalise_advantage(adv, mask)
    real = out[mask.bool()]  # [n_real, K]
    torch.testing.assert_close(real.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(real.std(0, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    assert (out[0, 3:] == 0).all()
