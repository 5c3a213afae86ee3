"""Episode batches: concatenating chunks of different lengths pads with steps that are not real."""
from __future__ import annotations

import torch

from dm2_repro.training.rollout import EpisodeBatch


def chunk(lengths, T, K=2, D=3, A=4, reward=1.0):
    """Lockstep chunk: episodes of the given lengths, the chunk T steps long (its longest episode);
    rewards `reward` on real steps, terminated at each episode's last step."""
    B = len(lengths)
    length = torch.tensor(lengths)
    mask = (torch.arange(T)[None] < length[:, None]).float()
    terminated = torch.zeros(B, T)
    terminated[torch.arange(B), length - 1] = 1.0
    return EpisodeBatch(obs=torch.ones(B, T + 1, K, D), state=torch.ones(B, T + 1, 5),
                        avail=torch.ones(B, T + 1, K, A, dtype=torch.bool),
                        actions=torch.ones(B, T, K, dtype=torch.long), reward=reward * mask, terminated=terminated,
                        mask=mask, battle_won=torch.zeros(B), ep_return=reward * length.float(), ep_length=length)


def test_cat_pads_shorter_chunks_with_steps_that_are_not_real():
    a = chunk([3, 2], T=3)  # its last step is real for episode 0 (the old code repeated it)
    b = chunk([6, 4], T=6, reward=2.0)
    cat = EpisodeBatch.cat([a, b])
    assert cat.actions.shape[1] == 6 and cat.obs.shape[1] == 7
    assert cat.n_steps == 3 + 2 + 6 + 4  # padded steps are never counted as env steps
    torch.testing.assert_close(cat.mask[0], torch.tensor([1.0, 1, 1, 0, 0, 0]))
    torch.testing.assert_close(cat.reward[0], torch.tensor([1.0, 1, 1, 0, 0, 0]))  # no repeated final reward
    torch.testing.assert_close(cat.terminated[0], torch.tensor([0.0, 0, 1, 0, 0, 0]))  # ends once
    torch.testing.assert_close(cat.reward[1], torch.tensor([1.0, 1, 0, 0, 0, 0]))
    assert cat.reward.sum().item() == 1 * 5 + 2 * 10
    torch.testing.assert_close(cat.reward.sum(1), cat.ep_return)  # per-episode sums still equal the returns
    assert (cat.obs[:2, 4:] == 0).all() and (cat.actions[:2, 3:] == 0).all()
    torch.testing.assert_close(cat.mask[2:], b.mask)  # the longest chunk is unchanged
