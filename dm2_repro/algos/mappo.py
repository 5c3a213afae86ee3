"""Recurrent MAPPO (RMAPPO, Yu et al. 2022): the paper's centralised policy-gradient baseline.

    actor  pi(u_i | tau_i): one parameter-shared recurrent net; input own obs + last action + agent id
    critic V(s_t, i):       one parameter-shared recurrent net on the GLOBAL state + agent id,
                            one value per agent, trained on ValueNorm-normalised returns
    loss = PPO clip (shared team advantage, GAE) - 0.01 entropy + Huber(delta 10) clipped value loss

Differences from MAPPO's own code (README, baselines section, says why):
  * data: `rmappo_buffer_episodes` whole episodes per update from the lockstep batched envs, and BPTT
    over each whole episode from a zero hidden state; MAPPO's runner keeps 8 threads x 400-step
    windows that cut across episodes and trains recurrent chunks of 10 steps.
  * time limits bootstrap from the final observation's value (MAPPO's SMAC default treats the
    limit as terminal); dead agents are not masked out of the losses (no alive flags in the batch).
  * the global state is standardised with running statistics before the critic (SMAX's raw
    state is not normalised the way SMAC's is), then goes through the net's input LayerNorm as in MAPPO.
  * the actor also gets the last action (the same input as the paper's IPPO agents).

Reference: docs/baselines.md.
"""
from __future__ import annotations

import torch

from dm2_repro.config import HP
from dm2_repro.envs.base import EnvSpec
from dm2_repro.networks import Packing, RecurrentAgentNet, agent_inputs, previous_actions, shared_step, shared_unroll
from dm2_repro.training.rollout import EpisodeBatch
from .common import ActingNet, RunningMeanStd, adam, masked_logits, real_states
from .ippo import gae, ppo_loss


class ValueNorm:
    """MAPPO's ValueNorm: debiased exponential running mean and mean-square of the returns
    (beta = 0.99999, i.e. nearly the plain average of every batch's mean so far). The critic
    predicts normalised values; they are denormalised for GAE."""

    def __init__(self, beta: float = 0.99999, eps: float = 1e-5, var_min: float = 1e-2, device=None):
        self.beta, self.eps, self.var_min = beta, eps, var_min
        z = lambda: torch.zeros((), dtype=torch.float64, device=device)  # noqa: E731
        self.running_mean, self.running_mean_sq, self.debiasing_term = z(), z(), z()

    def update(self, x):
        x = x.to(torch.float64)
        b = self.beta
        self.running_mean = b * self.running_mean + (1 - b) * x.mean()
        self.running_mean_sq = b * self.running_mean_sq + (1 - b) * (x**2).mean()
        self.debiasing_term = b * self.debiasing_term + (1 - b)

    def mean_std(self):
        d = self.debiasing_term.clamp(min=self.eps)
        mean, mean_sq = self.running_mean / d, self.running_mean_sq / d
        return mean, (mean_sq - mean**2).clamp(min=self.var_min).sqrt()

    def normalize(self, x):
        mean, std = self.mean_std()
        return ((x - mean) / std).to(x.dtype)

    def denormalize(self, x):
        mean, std = self.mean_std()
        return (x * std + mean).to(x.dtype)

    def state_dict(self) -> dict:
        return dict(running_mean=self.running_mean, running_mean_sq=self.running_mean_sq,
                    debiasing_term=self.debiasing_term)

    def load_state_dict(self, sd: dict) -> None:
        for k in ("running_mean", "running_mean_sq", "debiasing_term"):
            setattr(self, k, sd[k].to(self.running_mean.device, torch.float64))


class RMAPPO:
    name = "rmappo"

    def __init__(self, spec: EnvSpec, hp: HP, device="cpu", demo=None, state_norm: bool = True):
        self.spec, self.hp, self.device = spec, hp, torch.device(device)
        K, A, S = spec.n_agents, spec.n_actions, spec.state_dim
        # MAPPO's network (= the paper's IPPO net, which was ported from it): input LN, fc64 x2 with
        # LN, GRU64, LN, head; orthogonal init, policy head gain 0.01.
        self.actor = RecurrentAgentNet(1, spec.obs_dim + A + K, A, hp.hidden, head_gain=0.01).to(self.device)
        self.critic = RecurrentAgentNet(1, S + K, 1, hp.hidden, head_gain=1.0).to(self.device)
        self.actor_opt = adam(self.actor.parameters(), hp.lr, hp.adam_eps)
        self.critic_opt = adam(self.critic.parameters(), hp.lr, hp.adam_eps)
        self.value_norm = ValueNorm(device=self.device)
        self.state_norm = RunningMeanStd(S, self.device) if state_norm else None
        self.episodes_per_rollout = hp.rmappo_buffer_episodes

    def start_rollout(self, t_env: int) -> None:
        """Nothing in MAPPO depends on the env-step counter."""

    # ---- acting -------------------------------------------------------------------------------
    def init_hidden(self, n: int):
        return self.actor.init_hidden(n * self.spec.n_agents, device=self.device)  # [1, N*K, H]

    def acting_net(self) -> ActingNet:
        return ActingNet(self.actor, shared=True)

    @torch.no_grad()
    def act(self, obs, state, avail, last_action, hidden, greedy: bool, generator=None):
        x = agent_inputs(obs, last_action, self.spec.n_actions, self.spec.n_agents)  # [N, K, d_in]
        logits, hidden = shared_step(self.actor, x, hidden)
        logits = masked_logits(logits, avail)  # [N, K, A]
        if greedy:
            return logits.argmax(-1), hidden
        probs = torch.softmax(logits, -1)
        a = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
        return a.view(probs.shape[:-1]), hidden

    # ---- learning -----------------------------------------------------------------------------
    def critic_inputs(self, state):
        """state[B, T+1, S] -> [B, T+1, K, S+K]: the (standardised) global state with each agent's id."""
        K = self.spec.n_agents
        s = self.state_norm(state) if self.state_norm is not None else state
        agent_id = torch.eye(K, dtype=s.dtype, device=s.device).expand(*s.shape[:-1], K, K)
        return torch.cat([s.unsqueeze(-2).expand(*s.shape[:-1], K, s.shape[-1]), agent_id], -1)

    def values(self, state, lengths=None):
        """Normalised V(s_t, i) for every step and agent: [B, T+1, K] (state[B, T+1, S]; an episode's
        steps after lengths[b] are not computed, 0; lengths as in shared_unroll)."""
        return shared_unroll([self.critic], self.critic_inputs(state), lengths)[0].squeeze(-1)

    def policy_dist(self, x, batch: EpisodeBatch, packing=None):
        """pi(.|tau_t) of every agent [B, T, K]; packing: Packing.of_agents of the batch's T steps
        (built here if None)."""
        T = batch.actions.shape[1]
        packing = Packing.of_agents(batch.lengths(T), self.spec.n_agents, T) if packing is None else packing
        logits = masked_logits(shared_unroll([self.actor], x[:, :T], packing)[0], batch.avail[:, :T])
        return torch.distributions.Categorical(logits=logits)

    def advantages(self, batch: EpisodeBatch, value_old):
        """GAE of the team reward with every agent's own V(s, i) (denormalised): (adv, return) [B, T, K].
        A time-limit end bootstraps from V at the final state (index ep_length); a game end does not."""
        reward = batch.reward.unsqueeze(-1).expand(-1, -1, self.spec.n_agents)
        return gae(reward, self.value_norm.denormalize(value_old), batch.terminated, batch.mask,
                   self.hp.gamma, self.hp.gae_lambda)

    def after_rollout(self, batch: EpisodeBatch) -> None:
        if self.state_norm is not None:
            self.state_norm.update(real_states(batch))

    def update(self, batch: EpisodeBatch) -> dict:
        hp, K = self.hp, self.spec.n_agents
        x = agent_inputs(batch.obs, previous_actions(batch.actions), self.spec.n_actions, K)  # [B, T+1, K, d]
        mask, T = batch.mask, batch.actions.shape[1]
        packing = Packing.of_agents(batch.lengths(T), K, T)  # built once for every epoch
        with torch.no_grad():  # old = current before updating (the batch is on-policy)
            logp_old = self.policy_dist(x, batch, packing).log_prob(batch.actions)  # [B, T, K]
            value_old = self.values(batch.state, batch.lengths(batch.state.shape[1]))  # [B, T+1, K], normalised
            adv, ret = self.advantages(batch, value_old)
            # one advantage normalisation over every agent and real step (one shared policy)
            m = mask.unsqueeze(-1).expand_as(adv)
            mean, std = adv[m.bool()].mean(), adv[m.bool()].std(unbiased=False)
            adv = (adv - mean) / (std + 1e-8) * m
            self.value_norm.update(ret[m.bool()])  # as MAPPO: update with this batch, then normalise
            ret_n = self.value_norm.normalize(ret)
        for _ in range(hp.rmappo_ppo_epochs):  # one full-batch step per epoch (MAPPO SMAC: num_mini_batch 1)
            dist = self.policy_dist(x, batch, packing)
            value = self.values(batch.state[:, :T], packing)
            loss_k, parts = ppo_loss(dist.log_prob(batch.actions), logp_old, adv, dist.entropy(), value,
                                     value_old[:, :T], ret_n, mask, hp.rmappo_clip, hp.entropy_coef,
                                     hp.rmappo_value_loss_coef, hp.huber_delta)
            # every agent has the same number of real steps, so the mean of the per-agent means is
            # the mean over all agent-steps: the loss of one shared actor and one shared critic
            loss = loss_k.mean()
            self.actor_opt.zero_grad(), self.critic_opt.zero_grad()
            loss.backward()
            actor_gn = torch.nn.utils.clip_grad_norm_(self.actor.parameters(), hp.max_grad_norm)
            critic_gn = torch.nn.utils.clip_grad_norm_(self.critic.parameters(), hp.max_grad_norm)
            self.actor_opt.step(), self.critic_opt.step()
        stats = {k: v.mean().item() for k, v in parts.items()}
        vmean, vstd = self.value_norm.mean_std()
        stats.update(actor_grad_norm=actor_gn.item(), critic_grad_norm=critic_gn.item(),
                     value_norm_mean=vmean.item(), value_norm_std=vstd.item())
        return stats

    # ---- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return dict(actor=self.actor.state_dict(), critic=self.critic.state_dict(),
                    actor_opt=self.actor_opt.state_dict(), critic_opt=self.critic_opt.state_dict(),
                    value_norm=self.value_norm.state_dict(),
                    state_norm=self.state_norm.state_dict() if self.state_norm is not None else {})

    def load_state_dict(self, sd: dict) -> None:
        self.actor.load_state_dict(sd["actor"]), self.critic.load_state_dict(sd["critic"])
        self.actor_opt.load_state_dict(sd["actor_opt"]), self.critic_opt.load_state_dict(sd["critic_opt"])
        self.value_norm.load_state_dict(sd["value_norm"])
        if self.state_norm is not None:
            self.state_norm.load_state_dict(sd["state_norm"])

    def policy_state(self) -> dict:
        """What acting needs (demonstration sources): the actor only."""
        return dict(actor=self.actor.state_dict())

    def load_policy_state(self, sd: dict) -> None:
        self.actor.load_state_dict(sd["actor"])
