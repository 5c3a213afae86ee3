"""QMIX (Rashid et al. 2018) with PyMARL's default hyperparameters: the paper's centralised
value-based baseline (Figure 2) and the source of its QMIX demonstrations.

    Q_tot(tau, u, s) = mixer([Q_1(tau_1, u_1), ..., Q_K(tau_K, u_K)], s)   monotonic in every Q_i
    y = r + gamma * (1 - terminated) * Q_tot^-(tau', argmax_u' Q(tau', u'), s')   double Q-learning
    L = sum over real steps of (Q_tot - y)^2 / number of real steps

One parameter-shared recurrent agent network (agents folded into the batch, agent id one-hot and
last action in the input), epsilon-greedy acting, an episode replay buffer, a target network
(agents and mixer) copied every `target_update_episodes` episodes, RMSprop, grad-norm clip 10.
The whole loss is in `QMIX.td_loss`.

Parallel environments: the paper ran PyMARL's single-environment runner, which takes one gradient
step per collected episode. Here a rollout collects N = hp.n_envs episodes at once and `update`
then takes N gradient steps (each on its own sampled batch), so gradient steps, target updates and
epsilon per episode / env step are those of the single-env runner; only the acting policy lags by
up to N-1 episodes.

Reference: docs/baselines.md.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from dm2_repro.config import HP
from dm2_repro.envs.base import EnvSpec
from dm2_repro.networks import RecurrentAgentNet, agent_inputs, previous_actions, shared_step, shared_unroll
from dm2_repro.training.rollout import EpisodeBatch
from .common import NEG_INF, ActingNet, RunningMeanStd, real_states


def epsilon_schedule(t_env: int, start: float, finish: float, anneal_steps: int) -> float:
    """PyMARL's linear decay then flat: start -> finish over anneal_steps env steps."""
    frac = min(max(t_env, 0) / max(anneal_steps, 1), 1.0)
    return start + frac * (finish - start)


class QMixer(nn.Module):
    """PyMARL's monotonic mixing network; its weights come from hypernetworks of the state s.

    Q_tot = w_2(s) . elu(Q W_1(s) + b_1(s)) + V(s), with W_1 = |hyper_w1(s)|, w_2 = |hyper_w2(s)|:
    non-negative weights and a monotonic activation give dQ_tot/dQ_i >= 0 (biases are unconstrained)."""

    def __init__(self, n_agents: int, state_dim: int, embed: int = 32, hypernet_embed: int = 64):
        super().__init__()
        self.n_agents, self.embed = n_agents, embed
        self.hyper_w1 = nn.Sequential(nn.Linear(state_dim, hypernet_embed), nn.ReLU(),
                                      nn.Linear(hypernet_embed, n_agents * embed))
        self.hyper_b1 = nn.Linear(state_dim, embed)
        self.hyper_w2 = nn.Sequential(nn.Linear(state_dim, hypernet_embed), nn.ReLU(),
                                      nn.Linear(hypernet_embed, embed))
        self.hyper_v = nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def forward(self, q, s):  # q[..., K], s[..., S] -> Q_tot[...]
        W1 = self.hyper_w1(s).abs().view(*s.shape[:-1], self.n_agents, self.embed)  # [..., K, E]
        hidden = F.elu(torch.einsum("...k,...ke->...e", q, W1) + self.hyper_b1(s))  # [..., E]
        w2 = self.hyper_w2(s).abs()  # [..., E]
        return (hidden * w2).sum(-1) + self.hyper_v(s).squeeze(-1)


class EpisodeReplayBuffer:
    """Ring buffer of whole episodes, every one padded to the episode limit T (fixed-shape tensors,
    as PyMARL's). Holds at most `capacity` episodes; a full buffer overwrites its oldest."""

    def __init__(self, capacity: int, spec: EnvSpec, device):
        self.capacity, self.spec, self.device = capacity, spec, device
        # allocated on first insert: a learner that only acts (demonstration sampling) needs no buffer
        self.data: dict[str, torch.Tensor] = {}
        self.ptr, self.size = 0, 0  # next slot to write, episodes held

    def _allocate(self) -> None:
        spec, C, T = self.spec, self.capacity, self.spec.episode_limit
        K, A = spec.n_agents, spec.n_actions
        z = lambda *shape, dtype=torch.float32: torch.zeros(*shape, dtype=dtype, device=self.device)  # noqa: E731
        self.data = dict(
            obs=z(C, T + 1, K, spec.obs_dim), state=z(C, T + 1, spec.state_dim),
            avail=z(C, T + 1, K, A, dtype=torch.bool), actions=z(C, T, K, dtype=torch.long),
            reward=z(C, T), terminated=z(C, T), mask=z(C, T),
            battle_won=z(C), ep_return=z(C), ep_length=z(C, dtype=torch.long))

    def __len__(self) -> int:
        return self.size

    def insert(self, batch: EpisodeBatch) -> None:
        if not self.data:
            self._allocate()
        n = batch.n_episodes
        skip = max(n - self.capacity, 0)  # more episodes than slots: only the newest fit
        slots = (self.ptr + torch.arange(n - skip)) % self.capacity
        for k, store in self.data.items():
            x = getattr(batch, k)[skip:].to(store.device)
            if k in EpisodeBatch.STEP_FIELDS:
                store[slots] = 0  # clear the old episode's tail beyond this one's length
                store[slots, : x.shape[1]] = x
            else:
                store[slots] = x
        self.ptr = int((self.ptr + n - skip) % self.capacity)
        self.size = min(self.size + n - skip, self.capacity)

    def sample(self, n: int, generator: torch.Generator) -> EpisodeBatch:
        """n distinct episodes, uniformly, trimmed to the longest of them."""
        idx = torch.randperm(self.size, generator=generator)[:n].to(self.data["obs"].device)
        return EpisodeBatch(**{k: v[:self.size] for k, v in self.data.items()}).index(idx)

    def state_dict(self) -> dict:  # only the filled part, so a checkpoint is as small as the data
        return dict(ptr=self.ptr, size=self.size, data={k: v[: self.size].clone() for k, v in self.data.items()})

    def load_state_dict(self, sd: dict) -> None:
        self.ptr, self.size = int(sd["ptr"]), int(sd["size"])
        if self.size and not self.data:
            self._allocate()
        for k, v in sd["data"].items():
            self.data[k][: self.size] = v.to(self.data[k].device)


def make_agent_net(arch: str, d_in: int, n_actions: int, hidden: int) -> RecurrentAgentNet:
    """The two agent networks of Figure 8, each one parameter-shared net (G=1 stack).
    pymarl: fc64-ReLU-GRU64-fc (Rashid et al.; the architecture of the paper's QMIX curves).
    ippo:   the IPPO network, LN-fc64-ReLU-LN-fc64-ReLU-LN-GRU64-LN-fc."""
    if arch == "pymarl":
        return RecurrentAgentNet(1, d_in, n_actions, hidden, n_fc=1, layer_norm=False, head_gain=1.0)
    if arch == "ippo":
        return RecurrentAgentNet(1, d_in, n_actions, hidden)
    raise ValueError(f"unknown QMIX agent_arch {arch!r}; valid: pymarl, ippo")


class QMIX:
    name = "qmix"

    def __init__(self, spec: EnvSpec, hp: HP, device="cpu", demo=None, agent_arch: str = "pymarl",
                 state_norm: bool = True):
        self.spec, self.hp, self.device = spec, hp, torch.device(device)
        K, A = spec.n_agents, spec.n_actions
        self.agent = make_agent_net(agent_arch, spec.obs_dim + A + K, A, hp.hidden).to(self.device)
        self.mixer = QMixer(K, spec.state_dim, hp.mixing_embed_dim, hp.hypernet_embed).to(self.device)
        self.target_agent = copy.deepcopy(self.agent).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        self.params = list(self.agent.parameters()) + list(self.mixer.parameters())
        self.opt = torch.optim.RMSprop(self.params, lr=hp.qmix_lr, alpha=hp.qmix_optim_alpha, eps=hp.qmix_optim_eps)
        self.buffer = EpisodeReplayBuffer(hp.qmix_buffer_episodes, spec, self.device)
        self.state_norm = RunningMeanStd(spec.state_dim, self.device) if state_norm else None
        self.episodes_per_rollout = hp.n_envs  # one parallel batch of episodes per rollout
        self.t_env = 0  # the env-step counter at the current rollout (start_rollout); drives epsilon
        self.fixed_epsilon: float | None = None
        self.episodes = 0  # collected so far (the target-update clock, as PyMARL's episode counter)
        self.last_target_update = 0
        self.train_steps = 0
        # replay sampling has its own stream (derived from the run seed), so resuming reproduces it
        self.sample_gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))

    # ---- acting -------------------------------------------------------------------------------
    def epsilon(self) -> float:
        if self.fixed_epsilon is not None:
            return self.fixed_epsilon
        hp = self.hp
        return epsilon_schedule(self.t_env, hp.epsilon_start, hp.epsilon_finish, hp.epsilon_anneal_steps)

    def start_rollout(self, t_env: int) -> None:
        """The rollout about to start acts with the epsilon of env step t_env."""
        self.t_env = int(t_env)

    def set_fixed_epsilon(self, eps: float | None) -> None:
        """Act epsilon-greedily with this epsilon instead of the schedule (QMIX demonstrations); None
        restores the schedule. greedy=True still means epsilon 0."""
        self.fixed_epsilon = None if eps is None else float(eps)

    def init_hidden(self, n: int):
        return self.agent.init_hidden(n * self.spec.n_agents, device=self.device)  # [1, N*K, H]

    def acting_net(self) -> ActingNet:
        return ActingNet(self.agent, shared=True, epsilon=self.epsilon())

    @torch.no_grad()
    def act(self, obs, state, avail, last_action, hidden, greedy: bool, generator=None):
        x = agent_inputs(obs, last_action, self.spec.n_actions, self.spec.n_agents)  # [N, K, d_in]
        q, hidden = shared_step(self.agent, x, hidden)  # agents folded into the batch of the G=1 net
        q = q.masked_fill(~avail, NEG_INF)  # [N, K, A]
        greedy_a = q.argmax(-1)
        eps = 0.0 if greedy else self.epsilon()
        if eps <= 0.0:
            return greedy_a, hidden
        N, K, A = q.shape
        gen_device = generator.device if generator is not None else torch.device("cpu")
        random_a = torch.multinomial(avail.reshape(-1, A).float().to(gen_device), 1, generator=generator).view(N, K)
        explore = torch.rand(N, K, generator=generator, device=gen_device) < eps
        return torch.where(explore.to(q.device), random_a.to(q.device), greedy_a), hidden

    # ---- learning -----------------------------------------------------------------------------
    def q_values(self, net: RecurrentAgentNet, batch: EpisodeBatch):
        """Q(tau_t, .) of every agent at every step: [B, T+1, K, A], unrolled from a zero hidden state
        with the last action as seen during the rollout."""
        K, T = self.spec.n_agents, batch.actions.shape[1]
        x = agent_inputs(batch.obs, previous_actions(batch.actions), self.spec.n_actions, K)  # [B, T+1, K, d]
        return shared_unroll([net], x, batch.lengths(T + 1))[0]  # padding after the final observation: 0

    def mixer_state(self, state):
        return self.state_norm(state) if self.state_norm is not None else state

    @torch.no_grad()
    def td_target(self, batch: EpisodeBatch, Q):
        """y_t = r_t + gamma (1 - terminated_t) Q_tot^-(tau_{t+1}, u*, s_{t+1}) with
        u* = argmax over available actions of the ONLINE Q (double Q-learning), evaluated by the
        target agents and target mixer. A time-limit end is not terminal: it bootstraps from the
        final observation (index ep_length). Q: online Q [B, T+1, K, A]. Returns y [B, T], u* [B, T, K]."""
        T = batch.actions.shape[1]
        u_star = Q[:, 1:].masked_fill(~batch.avail[:, 1:], NEG_INF).argmax(-1)  # [B, T, K]
        Q_target = self.q_values(self.target_agent, batch)[:, 1:]  # [B, T, K, A]
        Q_next = Q_target.gather(-1, u_star.unsqueeze(-1)).squeeze(-1)  # [B, T, K]
        Q_tot_next = self.target_mixer(Q_next, self.mixer_state(batch.state[:, 1 : T + 1]))  # [B, T]
        y = batch.reward + self.hp.gamma * (1.0 - batch.terminated) * Q_tot_next
        return y, u_star

    def td_loss(self, batch: EpisodeBatch):
        """The whole QMIX loss: masked mean squared TD(0) error of Q_tot."""
        T = batch.actions.shape[1]
        Q = self.q_values(self.agent, batch)  # [B, T+1, K, A]
        Q_taken = Q[:, :T].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)  # Q_i(tau_t, u_t) [B, T, K]
        Q_tot = self.mixer(Q_taken, self.mixer_state(batch.state[:, :T]))  # [B, T]
        y, _ = self.td_target(batch, Q.detach())
        td = (Q_tot - y) * batch.mask  # padded steps: zero error, zero gradient
        n_real = batch.mask.sum().clamp(min=1.0)
        loss = td.pow(2).sum() / n_real
        stats = dict(td_error_abs=(td.abs().sum() / n_real).item(),
                     q_taken_mean=((Q_taken * batch.mask.unsqueeze(-1)).sum() / (n_real * self.spec.n_agents)).item(),
                     target_mean=((y * batch.mask).sum() / n_real).item())
        return loss, stats

    def update_targets(self) -> None:
        self.target_agent.load_state_dict(self.agent.state_dict())
        self.target_mixer.load_state_dict(self.mixer.state_dict())

    def after_rollout(self, batch: EpisodeBatch) -> None:
        if self.state_norm is not None:
            self.state_norm.update(real_states(batch))
        self.buffer.insert(batch)

    def update(self, batch: EpisodeBatch) -> dict:
        """One gradient step per episode of the rollout (PyMARL's single-env ratio), each on
        qmix_batch_episodes episodes sampled from the buffer; none until the buffer holds that many."""
        hp = self.hp
        first_episode = self.episodes
        self.episodes += batch.n_episodes
        logs = []
        for j in range(batch.n_episodes):
            if len(self.buffer) < hp.qmix_batch_episodes:
                continue
            sample = self.buffer.sample(hp.qmix_batch_episodes, self.sample_gen)
            loss, stats = self.td_loss(sample)
            self.opt.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, hp.max_grad_norm)
            self.opt.step()
            self.train_steps += 1
            episode_num = first_episode + j + 1  # as if this step followed episode j of the rollout
            if episode_num - self.last_target_update >= hp.target_update_episodes:
                self.update_targets()
                self.last_target_update = episode_num
            logs.append(dict(loss=loss.item(), grad_norm=grad_norm.item(), **stats))
        out = {k: sum(d[k] for d in logs) / len(logs) for k in logs[0]} if logs else {}
        out.update(epsilon=self.epsilon(), buffer_episodes=float(len(self.buffer)), train_steps=float(self.train_steps))
        return out

    # ---- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything a resumed run needs, replay buffer included (PyMARL does not save it; without it
        a resumed run would restart from an empty buffer and leave the original curve)."""
        return dict(agent=self.agent.state_dict(), mixer=self.mixer.state_dict(),
                    target_agent=self.target_agent.state_dict(), target_mixer=self.target_mixer.state_dict(),
                    opt=self.opt.state_dict(), buffer=self.buffer.state_dict(),
                    state_norm=self.state_norm.state_dict() if self.state_norm is not None else {},
                    counters=dict(episodes=self.episodes, last_target_update=self.last_target_update,
                                  train_steps=self.train_steps, t_env=self.t_env),
                    sample_gen=self.sample_gen.get_state())

    def load_state_dict(self, sd: dict) -> None:
        self.agent.load_state_dict(sd["agent"]), self.mixer.load_state_dict(sd["mixer"])
        self.target_agent.load_state_dict(sd["target_agent"]), self.target_mixer.load_state_dict(sd["target_mixer"])
        self.opt.load_state_dict(sd["opt"])
        self.buffer.load_state_dict(sd["buffer"])
        if self.state_norm is not None:
            self.state_norm.load_state_dict(sd["state_norm"])
        c = sd["counters"]
        self.episodes, self.last_target_update = int(c["episodes"]), int(c["last_target_update"])
        self.train_steps, self.t_env = int(c["train_steps"]), int(c["t_env"])
        self.sample_gen.set_state(sd["sample_gen"])

    def policy_state(self) -> dict:
        """What acting needs (demonstration sources): the agent network only."""
        return dict(agent=self.agent.state_dict())

    def load_policy_state(self, sd: dict) -> None:
        self.agent.load_state_dict(sd["agent"])
