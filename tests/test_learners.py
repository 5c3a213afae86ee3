"""Every registered algorithm against the Learner protocol (dm2_repro/algos/__init__.py): acting with
action masks, one update, checkpoint and policy-snapshot round trips, and its capabilities."""
from __future__ import annotations

import io

import pytest
import torch

from dm2_repro.algos import ALGOS, Learner, acting_algo, capabilities, make_learner
from dm2_repro.algos import bc

from tests.fixtures import SPEC, fake_demo, random_batch, small_hp

HP_SMALL = dict(demo_episodes=8, qmix_batch_episodes=4, qmix_buffer_episodes=16, rmappo_buffer_episodes=4,
                bc_epochs=2)


def build(algo: str, seed: int = 0):
    demo = fake_demo(E=8, spec=SPEC) if capabilities(algo).needs_demo else None
    torch.manual_seed(seed)
    return make_learner(algo, SPEC, small_hp(**HP_SMALL), demo=demo), demo


def flat(state: dict) -> torch.Tensor:
    """Every floating tensor of a (nested) state dict, flattened and concatenated."""
    out = []
    for v in state.values():
        if isinstance(v, dict):
            out.append(flat(v))
        elif torch.is_tensor(v) and v.is_floating_point():
            out.append(v.detach().flatten().float())
    return torch.cat(out) if out else torch.zeros(0)


def act_greedy(learner, obs, avail, last):
    return learner.act(obs, torch.zeros(obs.shape[0], SPEC.state_dim), avail, last,
                       learner.init_hidden(obs.shape[0]), True, torch.Generator().manual_seed(0))[0]


def masked_inputs(N: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    avail = torch.rand(N, SPEC.n_agents, SPEC.n_actions, generator=g) < 0.3
    avail[..., 0] |= ~avail.any(-1)
    obs = torch.randn(N, SPEC.n_agents, SPEC.obs_dim, generator=g)
    last = torch.randint(-1, SPEC.n_actions, (N, SPEC.n_agents), generator=g)
    return obs, avail, last


def one_update(learner, seed: int) -> dict:
    batch = random_batch(SPEC, [5, 8, 3, 6], seed=seed)
    learner.start_rollout(1000 * seed)
    learner.after_rollout(batch)
    return learner.update(batch)


@pytest.mark.parametrize("algo", list(ALGOS))
def test_every_algorithm_follows_the_learner_protocol(algo):
    learner, demo = build(algo)
    assert isinstance(learner, Learner) and learner.name == algo
    assert learner.episodes_per_rollout >= 1

    # acting: shapes, never an unavailable action (sampled or greedy), greedy is deterministic
    N = 128
    gen = torch.Generator().manual_seed(1)
    hidden = learner.init_hidden(N)
    for step in range(5):
        obs, avail, last = masked_inputs(N, step)
        for greedy in (False, True):
            a, h = learner.act(obs, torch.zeros(N, SPEC.state_dim), avail, last, hidden, greedy, gen)
            assert a.shape == (N, SPEC.n_agents) and a.dtype == torch.long
            assert avail.gather(-1, a.unsqueeze(-1)).all(), f"{algo} chose an unavailable action"
        hidden = h
    obs, avail, last = masked_inputs(N, 9)
    assert torch.equal(act_greedy(learner, obs, avail, last), act_greedy(learner, obs, avail, last))

    # one update changes the parameters and reports finite scalars
    if capabilities(algo).pretrains:
        stats = bc.pretrain(learner, demo, torch.Generator().manual_seed(0))
        assert set(stats) >= {"bc_nll_before", "bc_nll_after"}
    before = flat(learner.state_dict())
    stats = one_update(learner, seed=1)
    one_update(learner, seed=2)
    assert stats and all(isinstance(v, float) and v == v for v in stats.values()), stats
    after = flat(learner.state_dict())
    assert before.shape != after.shape or not torch.equal(before, after), f"{algo}: update changed nothing"

    # checkpoint round trip: a fresh learner (other initial weights) loaded from the checkpoint takes the
    # very same next update
    buf = io.BytesIO()
    torch.save(learner.state_dict(), buf)
    buf.seek(0)
    fresh, _ = build(algo, seed=7)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    s1, s2 = one_update(learner, seed=3), one_update(fresh, seed=3)
    assert s1.keys() == s2.keys()
    for k in s1:
        assert s1[k] == pytest.approx(s2[k], rel=1e-5, abs=1e-7), (algo, k)
    torch.testing.assert_close(flat(learner.state_dict()), flat(fresh.state_dict()))

    # policy snapshot: the acting learner of this algorithm acts exactly as the learner does
    actor, _ = build(acting_algo(algo), seed=11)
    actor.load_policy_state(learner.policy_state())
    obs, avail, last = masked_inputs(N, 10)
    assert torch.equal(act_greedy(actor, obs, avail, last), act_greedy(learner, obs, avail, last))


def test_capabilities_are_consistent():
    for algo, entry in ALGOS.items():
        caps = entry.caps
        assert not (caps.needs_demo and caps.demo_source), f"{algo}: an imitator is not an expert"
        assert not caps.pretrains or caps.needs_demo, f"{algo}: BC pretraining needs demonstrations"
        assert capabilities(acting_algo(algo)).acts_as in ("", acting_algo(algo)), f"{algo}: one hop to an actor"
    assert {a for a in ALGOS if capabilities(a).demo_source} == {"ippo", "qmix", "qmix_ippo_arch", "rmappo"}
    with pytest.raises(ValueError, match="unknown algo 'nope'"):
        capabilities("nope")
    with pytest.raises(ValueError, match="learns from demonstrations"):
        make_learner("dm2", SPEC, small_hp())
