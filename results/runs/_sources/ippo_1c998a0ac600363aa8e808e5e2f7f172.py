"""Independent PPO (IPPO): K agents, each with its own recurrent actor, critic and Adam;
no parameter sharing. The networks are stacked (nets.py) so K agents run in one kernel.

The whole loss is in `ppo_loss`; GAE with padded steps masked out is in `gae`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dm2_repro.config import HP
from dm2_repro.envs.base import EnvSpec
from dm2_repro.networks import (Packing, RecurrentAgentNet, agent_inputs, clip_grad_norm_per_stack, previous_actions,
                    unroll_many)
from dm2_repro.training.rollout import EpisodeBatch
from .common import ActingNet, adam, masked_logits, masked_mean_per_agent


def gae(reward, value, terminated, mask, gamma: float, lam: float):
    """Generalised advantage estimation over padded episodes.

    reward[B, T, K], value[B, T+1, K] (value[:, t] = V(o_t); value at an episode's final observation
    bootstraps a time-limit end), terminated[B, T] (game over: no bootstrap), mask[B, T] (real steps).
    Padded steps get advantage 0 and never leak into real ones. Returns (advantage, return) [B, T, K]."""
    B, T, K = reward.shape
    adv = torch.zeros_like(reward)
    running = torch.zeros(B, K, device=reward.device)
    next_mask = torch.zeros(B, device=reward.device)
    for t in reversed(range(T)):
        not_term = (1.0 - terminated[:, t]).unsqueeze(-1)
        delta = reward[:, t] + gamma * not_term * value[:, t + 1] - value[:, t]
        running = delta + gamma * lam * not_term * next_mask.unsqueeze(-1) * running
        running = running * mask[:, t].unsqueeze(-1)
        adv[:, t] = running
        next_mask = mask[:, t]
    return adv, adv + value[:, :T]


def huber(x, delta: float):
    return F.huber_loss(x, torch.zeros_like(x), reduction="none", delta=delta)


def ppo_loss(logp, logp_old, adv, entropy, value, value_old, ret, mask, clip: float, entropy_coef: float,
             value_loss_coef: float, huber_delta: float):
    """The PPO objective per agent ([K] each), summed over agents by the caller; agent k's term
    depends only on agent k's networks. All inputs [B, T, K]; adv is already normalised."""
    ratio = torch.exp(logp - logp_old)
    policy_loss = -masked_mean_per_agent(torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv), mask)
    value_clipped = value_old + (value - value_old).clamp(-clip, clip)
    value_loss = masked_mean_per_agent(torch.max(huber(ret - value, huber_delta),
                                                 huber(ret - value_clipped, huber_delta)), mask)
    entropy_bonus = masked_mean_per_agent(entropy, mask)
    total = policy_loss + value_loss_coef * value_loss - entropy_coef * entropy_bonus
    return total, dict(policy_loss=policy_loss, value_loss=value_loss, entropy=entropy_bonus,
                       approx_kl=masked_mean_per_agent(logp_old - logp, mask),
                       clip_frac=masked_mean_per_agent(((ratio - 1).abs() > clip).float(), mask))


def normalise_advantage(adv, mask):
    """Per agent, over real steps (each agent is its own learner)."""
    m = mask.unsqueeze(-1)
    n = m.sum((0, 1)).clamp(min=1.0)
    mean = (adv * m).sum((0, 1)) / n
    var = (((adv - mean) * m) ** 2).sum((0, 1)) / n
    return (adv - mean) / (var.sqrt() + 1e-8) * m


class IPPO:
    """K independent PPO learners. Subclasses change the reward each agent learns from and call
    `ppo_update` with it; the PPO update itself is shared."""

    name = "ippo"

    def __init__(self, spec: EnvSpec, hp: HP, device="cpu", demo=None):
        self.spec, self.hp, self.device = spec, hp, torch.device(device)
        K, A = spec.n_agents, spec.n_actions
        d_in = spec.obs_dim + A + K
        self.actor = RecurrentAgentNet(K, d_in, A, hp.hidden, head_gain=0.01).to(self.device)
        self.critic = RecurrentAgentNet(K, d_in, 1, hp.hidden, head_gain=1.0).to(self.device)
        # Adam is elementwise, so one Adam over the stacked weights is exactly one Adam per agent network;
        # gradient clipping is done per agent network (clip_grad_norm_per_stack).
        self.actor_opt = adam(self.actor.parameters(), hp.lr, hp.adam_eps)
        self.critic_opt = adam(self.critic.parameters(), hp.lr, hp.adam_eps)

    @property
    def episodes_per_rollout(self) -> int:
        return self.hp.buffer_episodes

    def start_rollout(self, t_env: int) -> None:
        """Nothing in PPO depends on the env-step counter."""

    # ---- acting -------------------------------------------------------------------------------
    def init_hidden(self, n: int):
        return self.actor.init_hidden(n, device=self.device)

    def acting_net(self) -> ActingNet:
        return ActingNet(self.actor, shared=False)

    @torch.no_grad()
    def act(self, obs, state, avail, last_action, hidden, greedy: bool, generator=None):
        x = agent_inputs(obs, last_action, self.spec.n_actions, self.spec.n_agents)  # [N, K, d_in]
        logits, hidden = self.actor.step(x, hidden)  # hidden[K, N, H]
        logits = masked_logits(logits, avail)
        if greedy:
            return logits.argmax(-1), hidden
        probs = torch.softmax(logits, -1)
        a = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
        return a.view(probs.shape[:-1]), hidden

    # ---- learning -----------------------------------------------------------------------------
    def inputs(self, batch: EpisodeBatch):
        """x[K, T+1, B, d_in] (stack-first, the networks' layout) with the last action as seen during
        the rollout."""
        x = agent_inputs(batch.obs, previous_actions(batch.actions), self.spec.n_actions, self.spec.n_agents)
        return x.permute(2, 1, 0, 3).contiguous()

    def actor_critic(self, x, avail, lengths=None):
        """Actor and critic on x[K, T', B, d] as one stack of 2K networks (same input, one time loop),
        on each episode's first lengths[b] steps only (all if None; EpisodeBatch.lengths, or their Packing).
        Returns log pi(.|tau)[B, T', K, A] (unavailable actions masked) and V[B, T', K]."""
        logits, value = unroll_many([self.actor, self.critic], x, lengths=lengths)
        logits = masked_logits(logits.permute(2, 1, 0, 3), avail[:, : x.shape[1]])
        return torch.log_softmax(logits, -1), value.squeeze(-1).permute(2, 1, 0)

    def team_reward(self, batch: EpisodeBatch):
        """The team reward as every agent's reward: [B, T, K]."""
        return batch.reward.unsqueeze(-1).expand(-1, -1, self.spec.n_agents)

    def update(self, batch: EpisodeBatch) -> dict:
        """IPPO: PPO on the team reward."""
        return self.ppo_update(batch, self.team_reward(batch))

    def ppo_update(self, batch: EpisodeBatch, reward) -> dict:
        """hp.ppo_epochs full-batch PPO steps of every agent on its reward[B, T, K]."""
        hp = self.hp
        x = self.inputs(batch)  # [K, T+1, B, d]
        T = batch.actions.shape[1]
        a = batch.actions.unsqueeze(-1)  # [B, T, K, 1]
        with torch.no_grad():  # the batch was collected by the current policy: old = current before updating
            logp_all, value_old = self.actor_critic(x, batch.avail, batch.lengths(T + 1))  # value_old[B, T+1, K]
            logp_old = logp_all[:, :T].gather(-1, a).squeeze(-1)
            adv, ret = gae(reward, value_old, batch.terminated, batch.mask, hp.gamma, hp.gae_lambda)
            adv = normalise_advantage(adv, batch.mask)
        x, packing = x[:, :T], Packing.of(batch.lengths(T), T)  # built once for every epoch
        for _ in range(hp.ppo_epochs):  # one full-batch step per epoch, as the original code
            logp_all, value = self.actor_critic(x, batch.avail, packing)
            entropy = -(logp_all.exp() * logp_all).sum(-1)
            loss, parts = ppo_loss(logp_all.gather(-1, a).squeeze(-1), logp_old, adv, entropy, value,
                                   value_old[:, :T], ret, batch.mask, hp.clip, hp.entropy_coef,
                                   hp.value_loss_coef, hp.huber_delta)
            self.actor_opt.zero_grad(), self.critic_opt.zero_grad()
            loss.sum().backward()  # sum over agents: agent k's gradient comes from its own loss only
            clip_grad_norm_per_stack(self.actor.parameters(), hp.max_grad_norm)
            clip_grad_norm_per_stack(self.critic.parameters(), hp.max_grad_norm)
            self.actor_opt.step(), self.critic_opt.step()
        stats = {k: v.mean().item() for k, v in parts.items()}
        stats["agent_reward_mean"] = masked_mean_per_agent(reward, batch.mask).mean().item()
        return stats

    def after_rollout(self, batch: EpisodeBatch) -> None:
        """Hook for learners that keep data across updates (SIL)."""

    # ---- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return dict(actor=self.actor.state_dict(), critic=self.critic.state_dict(),
                    actor_opt=self.actor_opt.state_dict(), critic_opt=self.critic_opt.state_dict())

    def load_state_dict(self, sd: dict) -> None:
        self.actor.load_state_dict(sd["actor"]), self.critic.load_state_dict(sd["critic"])
        self.actor_opt.load_state_dict(sd["actor_opt"]), self.critic_opt.load_state_dict(sd["critic_opt"])

    def policy_state(self) -> dict:
        """What acting needs (demonstration sources): the actors only."""
        return dict(actor=self.actor.state_dict())

    def load_policy_state(self, sd: dict) -> None:
        self.actor.load_state_dict(sd["actor"])
