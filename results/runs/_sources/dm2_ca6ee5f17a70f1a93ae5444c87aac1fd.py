"""DM² (Algorithm 1): IPPO where agent k's reward mixes the team reward with a GAIL reward from
its own discriminator D_k, trained to tell agent k's demonstration observations from its own.

For every agent k separately (symbols of the paper; z_k = logit of D_k, D_k = P(expert)):

    discriminator  min_{D_k}  - E_{o ~ demo_k}[log D_k(o)] - E_{o ~ π_k}[log(1 - D_k(o))]
                              + λ E_{ô}[(||∇_ô z_k(ô)||_2 - 1)^2]             (discriminator_loss)
    reward         r_{k,GAIL}(o_t), one of three forms (gail_reward, train's `gail_reward` key):
                     absorbing  z_k(o_t) = log D_k - log(1 - D_k), and after a game that ends before the
                                map's time limit, z_k(o_abs) on each remaining step up to the limit
                                (o_abs = the zero observation): paid at the last real step in closed
                                form (absorbing_return); the discriminators' data count those steps too
                     paper      -log(1 - D_k(o_t)) = softplus(z_k(o_t))   (Algorithm 1 line 10: -log D_agent)
                     logit      z_k(o_t) on real steps only (no absorbing state: pays agents to end games)
                   r_{k,mix} = r_env + c · r_{k,GAIL}                           (DM2.update)
    policy         PPO on r_{k,mix} with agent k's own actor and critic            (ippo.py)

Why the absorbing state: once the discriminator separates, E_π[z_k] ~ -KL(π_k || expert_k) < 0, so with
the log-odds reward on real steps only each extra step alive costs ~c·KL and a lost game stops the cost.
The original code padded every episode to the limit with zero observations and trained and paid on
them (by accident): an absorbing state as in Kostrikov et al. 2019 (DAC), under which ending early is
judged by how often the expert's games end early. docs/dm2.md has the derivation and the measurements.

Nothing is shared between agents: K discriminators (stacked, nets.StackedLinear with G = K, so
stack k is a separate network; one Adam over the stack is one Adam per discriminator), each
trained on agent k's data only. Tensors here are stack-first, agent k's data at index k of dim 0:
x[K, n, T, d], mask[K, n, T].

Variants (algos/__init__.py): dm2 (state-only), dm2_state_action (observation + one-hot action),
gail_only (r_gail alone), sil (class SIL: the target is the agent's own best past episodes).

Reference: docs/dm2.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dm2_repro.config import HP
from dm2_repro.envs.base import EnvSpec
from dm2_repro.networks import StackedLinear
from dm2_repro.training.rollout import EpisodeBatch
from . import GAIL_REWARDS, DEFAULT_GAIL_REWARD
from .common import adam, masked_mean
from .ippo import IPPO

DISCRIMINATOR_INPUTS = ("obs", "obs_action")
REWARDS = ("mixed", "gail")


class Discriminators(nn.Module):
    """K separate MLPs D_k: Linear(d,64)-Tanh-Linear(64,64)-Tanh-Linear(64,1), outputting the logit
    z_k(x) = log D_k(x) - log(1 - D_k(x)), where D_k(x) = sigmoid(z_k(x)) = P(x is expert)."""

    def __init__(self, n_agents: int, d_in: int, hidden: int = 64):
        super().__init__()
        tanh_gain = nn.init.calculate_gain("tanh")
        # torch's tanh: up to 2026-12-02 this was 2 sigmoid(2x) - 1 (the same function to 2e-7), faster on the
        # AVX2 CPU it was measured on; on this AVX-512 machine torch.tanh makes a discriminator step 1.3x faster
        self.net = nn.Sequential(StackedLinear(n_agents, d_in, hidden, gain=tanh_gain), nn.Tanh(),
                                 StackedLinear(n_agents, hidden, hidden, gain=tanh_gain), nn.Tanh(),
                                 StackedLinear(n_agents, hidden, 1, gain=1.0))

    def forward(self, x):  # stack-first: x[K, ..., d_in] -> logits z[K, ...]
        return self.net(x).squeeze(-1)


def gather_rows(rows, index):
    """rows[K, R, d], index[K, n] long -> out[K, n, d] with out[k, j] = rows[k, index[k, j]]. One index_select
    on the flattened rows: the same values as rows.gather(1, index expanded over d), 8x faster on the CPU we
    measured (a gather with an expanded index addresses every element, index_select copies whole rows)."""
    K, R, d = rows.shape
    flat = index + torch.arange(K, device=index.device).unsqueeze(1) * R  # [K, n] rows of rows.view(K * R, d)
    return rows.reshape(K * R, d).index_select(0, flat.reshape(-1)).view(K, -1, d)


def stack_mean(x, mask):
    """Stack-first x[K, ...], mask[K, ...] -> [K]: each agent's mean over its own real samples."""
    return masked_mean(x, mask, tuple(range(1, x.dim())))


@dataclass
class RealSteps:
    """The real (unpadded) steps of n episodes per agent, packed: agent k's steps are rows[k, :count_k]
    (valid marks them). grid_mask/grid_row describe the same steps on the padded episode grid
    [n episodes x T steps] flattened: which grid cells are real and which row each one is. The
    discriminator loss runs on the packed rows only; uniform draws of real steps index the grid, so
    they are the same draws as on padded episode arrays."""

    rows: torch.Tensor  # [K, R, d]
    valid: torch.Tensor  # [K, R] float: each row's weight (1 a real step, W_k the absorbing row, 0 padding)
    grid_mask: torch.Tensor  # [K, n*T] float (weights, as valid)
    grid_row: torch.Tensor  # [K, n*T] long, row of rows[k] for each real grid cell (0 elsewhere)
    n_real: int = 0  # the most real steps of any agent (the gradient penalty's interpolation count)
    absorbing_weight: torch.Tensor | None = None  # [K] weight of the absorbing row (with_absorbing), else None

    def with_absorbing(self, x_abs, weight) -> "RealSteps":
        """These steps plus the absorbing state: one row x_abs[d] per agent weighted by weight[K] (the
        absorbing steps of agent k's episodes, limit - length summed over its episodes that ended early),
        appended to the rows and to the grid, so that means over rows and uniform draws over the grid
        equal those over the episodes padded to the limit with x_abs (tests/test_gail_reward.py)."""
        K, R, d = self.rows.shape
        w = weight.to(self.valid.dtype).unsqueeze(1)  # [K, 1]
        rows = torch.cat([self.rows, x_abs.to(self.rows).expand(K, 1, d)], 1)
        abs_row = torch.full((K, 1), R, dtype=self.grid_row.dtype, device=self.grid_row.device)
        return RealSteps(rows, torch.cat([self.valid, w], 1), torch.cat([self.grid_mask, w.to(self.grid_mask)], 1),
                         torch.cat([self.grid_row, abs_row], 1), self.n_real, w.squeeze(1))


def real_steps(x, mask) -> RealSteps:
    """Padded episodes x[K, n, T, d], mask[K, n, T] as RealSteps (no packing: rows = every grid cell)."""
    K, d = x.shape[0], x.shape[-1]
    flat_m = mask.reshape(K, -1)
    return RealSteps(x.reshape(K, -1, d), flat_m, flat_m,
                     torch.arange(flat_m.shape[1], device=x.device).expand(K, -1), int(flat_m.sum(1).max().item()))


def absorbing_input(d_in: int, device=None):
    """The discriminator input of the absorbing state: zeros[d_in]. The zero observation is what SMAX
    gives a dead unit and what the original code padded episodes with; for the state-action
    discriminator its action part is zero too (no action)."""
    return torch.zeros(d_in, device=device)


def absorbing_steps(length, limit: int | None):
    """Absorbing steps after each episode: limit - length for an episode shorter than the map's time
    limit (it ended by the game: envs.base ends an episode at termination or at the limit), 0 for one
    cut by the limit (it bootstraps instead). length[...] long -> [...] float; limit None: no absorbing
    state (zeros)."""
    if limit is None:
        return torch.zeros_like(length, dtype=torch.float32)
    return (limit - length).clamp(min=0).float()


class EpisodeRows:
    """Episodes of every agent stored as packed real steps: rows[K, R, d] float32, agent k's episode e
    at rows[k, start[k, e] : start[k, e] + length[k, e]]. Built once from padded episodes, so each
    discriminator step gathers only the real steps of the episodes it samples. With `limit` (the
    absorbing reward form) each episode also counts absorbing[k, e] = limit - length absorbing steps
    (absorbing_steps), which a sample carries as one weighted row per agent."""

    def __init__(self, x, mask, limit: int | None = None):  # x[K, E, T, d], mask[K, E, T] (real steps first)
        K, E, T, d = x.shape
        self.length = mask.sum(2).long()  # [K, E]
        self.absorbing = absorbing_steps(self.length, limit) if limit is not None else None  # [K, E]
        self.start = torch.cumsum(self.length, 1) - self.length  # [K, E]
        R = max(int(self.length.sum(1).max().item()), 1)
        self.rows = x.new_zeros(K, R, d, dtype=torch.float32)
        for k in range(K):  # packed in (episode, step) order
            real = x[k][mask[k].bool()]
            self.rows[k, : real.shape[0]] = real
        self.n_episodes = E

    def sample(self, idx) -> RealSteps:
        """Agent k's episodes idx[k] (idx[K, n]) as RealSteps, on the grid trimmed to the longest of them."""
        K = idx.shape[0]
        idx = idx.to(self.length.device)
        length, start = self.length.gather(1, idx), self.start.gather(1, idx)  # [K, n]
        T = max(int(length.max().item()), 1)
        t = torch.arange(T, device=idx.device)
        grid_mask = (t < length.unsqueeze(-1)).reshape(K, -1)  # [K, n*T]
        grid_src = (start.unsqueeze(-1) + t).reshape(K, -1) * grid_mask  # row of each real cell
        count = length.sum(1)  # [K]
        R = max(int(count.max().item()), 1)
        order = torch.argsort((~grid_mask).to(torch.int8), dim=1, stable=True)[:, :R]  # real cells first
        src = grid_src.gather(1, order)  # [K, R]
        valid = (torch.arange(R, device=idx.device) < count.unsqueeze(1)).float()
        rows = gather_rows(self.rows, src)
        # the grid's real cells in order are exactly the packed rows 0..count-1
        grid_row = (torch.cumsum(grid_mask.long(), 1) - 1).clamp(min=0) * grid_mask
        steps = RealSteps(rows, valid, grid_mask.float(), grid_row, int(count.max().item()))
        if self.absorbing is None:
            return steps
        weight = self.absorbing.gather(1, idx).sum(1)  # [K] absorbing steps of the sampled episodes
        return steps.with_absorbing(absorbing_input(rows.shape[-1], rows.device), weight)

    def mean_length(self) -> float:
        return self.length.float().mean().item() if self.n_episodes else float("nan")


def sample_real_steps(steps: RealSteps, n: int, generator):
    """n steps per agent drawn uniformly (with replacement) from agent k's real steps only (and its
    absorbing steps, by their weight) -> [K, n, d]. The draw indexes the padded episode grid
    (steps.grid_mask), as on padded episode arrays."""
    idx = torch.multinomial(steps.grid_mask.cpu(), n, replacement=True, generator=generator)  # [K, n]
    rows = steps.grid_row.gather(1, idx.to(steps.grid_row.device))
    return gather_rows(steps.rows, rows)


def gradient_penalty(D: Discriminators, x_hat):
    """(||∇_x̂ z_k(x̂)||_2 - 1)^2 averaged over the points, per agent. x_hat[K, M, d] -> [K].
    Summing the logits before differentiating is exact: z_k at point m depends on x_hat[k, m] only."""
    x_hat = x_hat.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)  # [K, M, d]
    return ((grad.norm(dim=-1) - 1.0) ** 2).mean(1)


def discriminator_loss(D: Discriminators, expert: RealSteps, agent: RealSteps, grad_penalty: float, generator):
    """The GAIL discriminator objective, per agent k (a [K] vector; term k depends on D_k only):

        L_k = - E_{x ~ expert_k}[log D_k(x)] - E_{x ~ agent_k}[log(1 - D_k(x))]
              + λ E_{x̂}[(||∇_x̂ z_k(x̂)||_2 - 1)^2],      x̂ = u x_E + (1 - u) x_A,  u ~ U(0, 1)

    with D_k = sigmoid(z_k), expectations over real (unpadded) steps only, x_E / x_A a uniformly
    drawn real expert / agent step, and as many interpolation points as the agent batch's real steps.
    Under the absorbing form both data sets also hold the absorbing row, weighted by its step count
    (RealSteps.with_absorbing): expectations and draws are over the episodes padded to the limit.
    (`real_steps` turns padded episodes x[K, n, T, d], mask[K, n, T] into the RealSteps taken here.)"""
    z_E, z_A = D(expert.rows), D(agent.rows)  # [K, R_E], [K, R_A]
    m_E, m_A = expert.valid, agent.valid
    bce_E = stack_mean(F.binary_cross_entropy_with_logits(z_E, torch.ones_like(z_E), reduction="none"), m_E)
    bce_A = stack_mean(F.binary_cross_entropy_with_logits(z_A, torch.zeros_like(z_A), reduction="none"), m_A)
    K = z_E.shape[0]
    M = agent.n_real
    u = torch.rand(M, K, 1, generator=generator).to(z_E.device).transpose(0, 1)  # [K, M, 1]
    x_hat = u * sample_real_steps(expert, M, generator) + (1 - u) * sample_real_steps(agent, M, generator)
    gp = gradient_penalty(D, x_hat)
    loss = bce_E + bce_A + grad_penalty * gp
    with torch.no_grad():
        # accuracies over real steps only (the absorbing row left out), comparable across the reward's forms
        stats = dict(disc_loss=loss, disc_bce=bce_E + bce_A, disc_grad_penalty=gp,
                     disc_expert_acc=stack_mean((z_E > 0).float(), _real_rows(expert)),
                     disc_agent_acc=stack_mean((z_A < 0).float(), _real_rows(agent)),
                     # the absorbing row's share of each data set (0 without it): rows past the real steps
                     disc_expert_absorbing_share=_absorbing_share(expert),
                     disc_agent_absorbing_share=_absorbing_share(agent))
    return loss, stats


def _real_rows(steps: RealSteps):
    """[K, R] weights of the real steps only: the absorbing row (the last, where there is one) at 0."""
    if steps.absorbing_weight is None:
        return steps.valid
    real = steps.valid.clone()
    real[:, -1] = 0.0
    return real


def _absorbing_share(steps: RealSteps):
    """[K]: the absorbing row's share of each agent's data (0 without an absorbing state)."""
    if steps.absorbing_weight is None:
        return torch.zeros(steps.valid.shape[0], device=steps.valid.device)
    return steps.absorbing_weight / steps.valid.sum(1).clamp(min=1e-30)


@torch.no_grad()
def gail_reward(D, x, mask, form: str = "logit"):
    """r_gail on real steps, 0 on padded ones: x[K, B, T, d], mask[K, B, T] -> [K, B, T].

        logit, absorbing   z_k(x) = log D_k(x) - log(1 - D_k(x))       (the original code's form)
        paper              softplus(z_k(x)) = -log(1 - D_k(x))          (Algorithm 1 line 10: -log D_agent)

    The absorbing form's steps after a game's end are added by `absorbing_return`."""
    z = D(x)
    return (F.softplus(z) if form == "paper" else z) * mask


def absorbing_return(z_abs, n_abs, gamma: float):
    """The discounted GAIL reward of the absorbing steps after an episode, seen from its last real step:
    sum_{j=1..n} gamma^j z_abs = z_abs · gamma (1 - gamma^n) / (1 - gamma).
    z_abs[K] (z_k of the absorbing observation), n_abs[B] absorbing steps -> [B, K]."""
    n = n_abs.to(z_abs.dtype).unsqueeze(1)  # [B, 1]
    discount = gamma * (1 - gamma ** n) / (1 - gamma) if gamma != 1.0 else n
    return discount * z_abs.unsqueeze(0)


def add_at_last_step(reward, extra, lengths):
    """reward[B, T, K] with extra[B, K] added at each episode's last real step (lengths[B] >= 1)."""
    out = reward.clone()
    b = torch.arange(reward.shape[0], device=reward.device)
    out[b, (lengths - 1).clamp(min=0)] += extra
    return out


def sample_episodes(n_available: int, n: int, n_agents: int, generator) -> torch.Tensor:
    """Each agent draws its own n distinct episodes (all of them if fewer): idx[K, n]."""
    n = min(n, n_available)
    return torch.rand(n_agents, n_available, generator=generator).argsort(dim=1)[:, :n]


def discounted_return(reward, mask, gamma: float):
    """reward[B, T], mask[B, T] -> sum_t gamma^t r_t over real steps [B]."""
    discount = gamma ** torch.arange(reward.shape[1], dtype=reward.dtype, device=reward.device)
    return (reward * mask * discount).sum(1)


def per_agent_stats(name: str, values) -> dict:
    """values[K] -> {name/k: value} (one curve per agent in the logs)."""
    return {f"{name}/{k}": float(v) for k, v in enumerate(values.tolist())}


class DM2(IPPO):
    name = "dm2"

    def __init__(self, spec: EnvSpec, hp: HP, device="cpu", demo=None, discriminator_input: str = "obs",
                 reward: str = "mixed", gail_reward: str = DEFAULT_GAIL_REWARD):
        super().__init__(spec, hp, device)
        if discriminator_input not in DISCRIMINATOR_INPUTS or reward not in REWARDS or gail_reward not in GAIL_REWARDS:
            raise ValueError(f"DM2 options: discriminator_input in {DISCRIMINATOR_INPUTS}, reward in {REWARDS}, "
                             f"gail_reward in {GAIL_REWARDS}; got {discriminator_input!r}, {reward!r}, {gail_reward!r}")
        self.discriminator_input, self.reward, self.gail_form = discriminator_input, reward, gail_reward
        # the absorbing form's time limit: episodes shorter than it are followed by absorbing steps
        self.absorbing_limit = spec.episode_limit if gail_reward == "absorbing" else None
        K, D, A = spec.n_agents, spec.obs_dim, spec.n_actions
        d_in = D + (A if discriminator_input == "obs_action" else 0)
        self.x_abs = absorbing_input(d_in, self.device)  # [d_in]
        self.D = Discriminators(K, d_in, hp.gail_hidden).to(self.device)
        self.D_opt = adam(self.D.parameters(), hp.gail_lr)
        # own RNG for episode sampling and interpolation, seeded from torch's global RNG (seeded by the
        # trainer) and checkpointed, so a resumed run draws the same numbers
        self.generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        self.demo = demo
        self.init_target(demo)

    def init_target(self, demo) -> None:
        """The target data D_k: agent k's first hp.demo_episodes demonstration episodes (the file's style
        decides which joint episodes those are), stack-first: obs[K, E, T, D] float16, mask[K, E, T]."""
        if demo is None:
            raise ValueError("DM2 needs a demonstration (demo=...)")
        E = self.hp.demo_episodes
        if demo.n_episodes < E:
            raise ValueError(f"{demo.path} has {demo.n_episodes} episodes per agent, hp.demo_episodes={E} "
                             "asks for more: collect more or lower hp.demo_episodes")
        T = demo.actions.shape[1]
        self.set_target(demo.obs[:E, :T].permute(2, 0, 1, 3), demo.actions[:E].permute(2, 0, 1),
                        demo.mask[:E].permute(2, 0, 1))

    def set_target(self, obs, actions, mask) -> None:
        """D_k's target episodes, stack-first: obs[K, E, T, D], actions[K, E, T], mask[K, E, T]."""
        self.target = EpisodeRows(self.disc_input(obs, actions), mask, self.absorbing_limit)

    # ---- discriminator inputs ----------------------------------------------------------------
    def disc_input(self, obs, actions):
        """obs[K, ..., D] (any float dtype), actions[K, ...] -> x[K, ..., d_in] float32."""
        x = obs.float()
        if self.discriminator_input == "obs_action":
            x = torch.cat([x, F.one_hot(actions, self.spec.n_actions).float()], -1)
        return x

    def agent_observations(self, batch: EpisodeBatch):
        """What D_k sees of the agents' own steps: x[K, B, T, d] (o_t, and a_t), mask[K, B, T]."""
        T = batch.actions.shape[1]
        x = self.disc_input(batch.obs[:, :T].permute(2, 0, 1, 3), batch.actions.permute(2, 0, 1))
        return x.contiguous(), batch.mask.unsqueeze(0).expand(self.spec.n_agents, -1, -1)

    # ---- Algorithm 1 ---------------------------------------------------------------------------
    def update(self, batch: EpisodeBatch) -> dict:
        """Algorithm 1, lines 7-12, for every agent k at once (stacked, nothing shared); line 6 (gather
        M steps of data) is the trainer's rollout, `batch`."""
        hp = self.hp
        x_A, m_A = self.agent_observations(batch)  # o^m of agent k's steps: [K, B, T, d], [K, B, T]
        # lines 8-9: sample demonstration states of D_k's own agent, update discriminator D_k
        stats = self.update_discriminators(x_A, m_A)
        # line 10: r_{k,GAIL}^m, 0 on padding (gail_reward: z_k, or softplus(z_k) for the paper form) ...
        r_gail = gail_reward(self.D, x_A, m_A, self.gail_form).permute(1, 2, 0)  # [B, T, K]
        # ... and, for the absorbing form, z_k(o_abs) on each step from a game's end to the time limit,
        # discounted to the episode's last real step (absorbing_return; 0 for a time-limit end)
        z_abs = self.z_absorbing()  # [K]
        n_abs = absorbing_steps(batch.ep_length, self.absorbing_limit)  # [B]
        r_gail_total = add_at_last_step(r_gail, absorbing_return(z_abs, n_abs, hp.gamma), batch.ep_length) \
            if self.absorbing_limit is not None else r_gail
        # line 11: r_{k,mix} = r_env + c r_{k,GAIL} (gail_only: r_{k,GAIL} alone)
        r_env = self.team_reward(batch)  # [B, T, K], 0 on padding
        r = r_env + hp.gail_coef * r_gail_total if self.reward == "mixed" else r_gail_total
        # line 12: PPO update of π_k and V_k on r_{k,mix}
        stats.update(self.ppo_update(batch, r))
        stats.update(self.reward_stats(r_env, r_gail, batch.mask))
        stats.update(self.absorbing_stats(z_abs, n_abs, batch))
        return stats

    @torch.no_grad()
    def z_absorbing(self):
        """z_k of the absorbing observation, every agent: [K]."""
        return self.D(self.x_abs.expand(self.spec.n_agents, 1, -1)).squeeze(1)

    def absorbing_stats(self, z_abs, n_abs, batch: EpisodeBatch) -> dict:
        """Diagnostics of the incentive to end games (logged under every form): z_k(o_abs) per agent, the
        batch's and the demonstrations' mean episode length, the mean absorbing steps per episode."""
        out = dict(z_absorbing=z_abs.mean().item(), **per_agent_stats("z_absorbing", z_abs),
                   agent_ep_length_mean=batch.ep_length.float().mean().item(),
                   demo_ep_length_mean=self.target.mean_length(),
                   absorbing_steps_mean=n_abs.mean().item())
        return out

    def update_discriminators(self, x_A, m_A) -> dict:
        """hp.gail_epochs steps; each step: every agent's discriminator on gail_batch_episodes of its target
        episodes and as many of its own episodes from the current batch (the agent store is the
        current on-policy batch, at most gail_buffer_episodes episodes). x_A[K, B, T, d], m_A[K, B, T]."""
        hp, K = self.hp, self.spec.n_agents
        n_target = self.target.n_episodes
        if n_target == 0:  # SIL before its store holds an episode
            return {}
        n = min(x_A.shape[1], hp.gail_buffer_episodes)
        agent = EpisodeRows(x_A[:, :n], m_A[:, :n], self.absorbing_limit)
        totals = {}
        for _ in range(hp.gail_epochs):
            expert = self.target.sample(sample_episodes(n_target, hp.gail_batch_episodes, K, self.generator))
            own = agent.sample(sample_episodes(n, hp.gail_batch_episodes, K, self.generator))
            loss, stats = discriminator_loss(self.D, expert, own, hp.grad_penalty, self.generator)
            self.D_opt.zero_grad()
            loss.sum().backward()  # sum over agents: D_k's gradient comes from L_k only
            self.D_opt.step()
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v
        means = {k: v / max(hp.gail_epochs, 1) for k, v in totals.items()}  # [K] each
        out = {k: v.mean().item() for k, v in means.items()}
        for k in ("disc_expert_acc", "disc_agent_acc", "disc_expert_absorbing_share",
                  "disc_agent_absorbing_share"):  # per agent (GAIL diagnostics)
            out.update(per_agent_stats(k, means[k]))
        return out

    def reward_stats(self, r_env, r_gail, mask) -> dict:
        """Size of the GAIL term against the env reward over real steps: mean r_gail, mean r_env, and per
        agent |c r_gail| / |r_env| (ratio of mean absolute values; inf if r_env is 0 everywhere)."""
        m = mask.unsqueeze(-1)
        n = m.sum((0, 1)).clamp(min=1.0)
        mean = lambda x: (x * m).sum((0, 1)) / n  # noqa: E731  [K]
        gail_size, env_size = mean((self.hp.gail_coef * r_gail).abs()), mean(r_env.abs())  # [K]
        # no env reward in the whole batch: the ratio is undefined, logged as inf (figures leave it out)
        ratio = torch.where(env_size > 0, gail_size / env_size.clamp(min=1e-30), torch.inf)
        return dict(r_gail_mean=mean(r_gail).mean().item(), r_env_mean=mean(r_env).mean().item(),
                    gail_env_ratio=ratio.mean().item(), **per_agent_stats("gail_env_ratio", ratio))

    # ---- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        sd = super().state_dict()
        sd.update(discriminator=self.D.state_dict(), discriminator_opt=self.D_opt.state_dict(),
                  generator=self.generator.get_state())
        return sd

    def load_state_dict(self, sd: dict) -> None:
        super().load_state_dict(sd)
        self.D.load_state_dict(sd["discriminator"])
        self.D_opt.load_state_dict(sd["discriminator_opt"])
        self.generator.set_state(sd["generator"])


class SIL(DM2):
    """Self-imitation (Figure 2's SIL curve): DM² whose target D_k is agent k's slice of the
    hp.sil_store_episodes episodes with the highest discounted env return seen so far, not a
    demonstration file. The team reward is shared, so every agent's own store would hold the same joint
    episodes: one store of per-agent slices equals K stores. Older episodes win ties."""

    name = "sil"

    def init_target(self, demo) -> None:
        K, D = self.spec.n_agents, self.spec.obs_dim
        self.target_obs = torch.zeros(K, 0, 1, D, dtype=torch.float16)  # [K, S, T, D]
        self.target_actions = torch.zeros(K, 0, 1, dtype=torch.long)
        self.target_mask = torch.zeros(K, 0, 1)
        self.store_priority = torch.zeros(0)  # [S] discounted env return of each stored episode
        self.store_capacity = self.hp.sil_store_episodes
        self.set_target(self.target_obs, self.target_actions, self.target_mask)

    def after_rollout(self, batch: EpisodeBatch) -> None:
        K = self.spec.n_agents
        new_G = discounted_return(batch.reward, batch.mask, self.hp.gamma).cpu()  # [B]
        T_new = batch.actions.shape[1]
        T = max(self.target_obs.shape[2], T_new)

        def pad(x):  # x[K, S, t, ...] -> x[K, S, T, ...], zeros appended in time (masked)
            return F.pad(x, (0, 0) * (x.dim() - 3) + (0, T - x.shape[2]))

        new_obs = batch.obs[:, :T_new].to("cpu", torch.float16).permute(2, 0, 1, 3)
        new_actions = batch.actions.cpu().permute(2, 0, 1)
        new_mask = batch.mask.cpu().unsqueeze(0).expand(K, -1, -1)
        obs = torch.cat([pad(self.target_obs), pad(new_obs)], 1)
        actions = torch.cat([pad(self.target_actions), pad(new_actions)], 1)
        mask = torch.cat([pad(self.target_mask), pad(new_mask)], 1)
        G = torch.cat([self.store_priority, new_G])
        keep = torch.argsort(-G, stable=True)[: self.store_capacity]
        T_keep = max(int(mask[:, keep].sum(2).max().item()), 1)  # trim time to the longest kept episode
        self.target_obs, self.target_actions = obs[:, keep, :T_keep].contiguous(), actions[:, keep, :T_keep].contiguous()
        self.target_mask, self.store_priority = mask[:, keep, :T_keep].contiguous(), G[keep].clone()
        self.set_target(self.target_obs, self.target_actions, self.target_mask)

    def update(self, batch: EpisodeBatch) -> dict:
        stats = super().update(batch)
        stats["sil_store_episodes"] = float(self.target_obs.shape[1])
        stats["sil_store_priority_mean"] = self.store_priority.mean().item() if len(self.store_priority) else 0.0
        return stats

    def state_dict(self) -> dict:
        sd = super().state_dict()
        sd["sil_store"] = dict(obs=self.target_obs, actions=self.target_actions.to(torch.int16),
                               mask=self.target_mask.to(torch.bool), priority=self.store_priority)
        return sd

    def load_state_dict(self, sd: dict) -> None:
        super().load_state_dict(sd)
        store = sd["sil_store"]
        self.target_obs, self.target_actions = store["obs"].to(torch.float16), store["actions"].long()
        self.target_mask, self.store_priority = store["mask"].float(), store["priority"]
        self.set_target(self.target_obs, self.target_actions, self.target_mask)
