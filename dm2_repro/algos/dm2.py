"""DM² (Algorithm 1): IPPO where agent k's reward mixes the team reward with a GAIL reward from
its own discriminator D_k, trained to tell agent k's demonstration observations from its own.

For every agent k separately (symbols of the paper; z_k = logit of D_k, D_k = P(expert)):

    discriminator  min_{D_k}  - E_{o ~ demo_k}[log D_k(o)] - E_{o ~ π_k}[log(1 - D_k(o))]
                              + λ E_{ô}[(||∇_ô z_k(ô)||_2 - 1)^2]             (discriminator_loss)
    reward         r_{k,GAIL}(o_t) = log D_k(o_t) - log(1 - D_k(o_t)) = z_k(o_t)  (gail_reward)
                   r_{k,mix} = r_env + c · r_{k,GAIL}                           (agent_rewards)
    policy         PPO on r_{k,mix} with agent k's own actor and critic            (ippo.py)

Nothing is shared between agents: K discriminators (stacked, nets.StackedLinear with G = K, so
stack k is a separate network; one Adam over the stack is one Adam per discriminator), each
trained on agent k's data only.

Variants (algos/__init__.py): dm2 (state-only), dm2_state_action (observation + one-hot action),
gail_only (r_gail alone), sil (the target is the agent's own best past episodes, no demo file).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import HP
from ..demos import gather_per_agent
from ..envs.base import EnvSpec
from ..nets import StackedLinear
from ..rollout import EpisodeBatch
from .ippo import IPPO

TARGETS = ("demo", "self")
DISCRIMINATOR_INPUTS = ("obs", "obs_action")
REWARDS = ("mixed", "gail")


class Discriminators(nn.Module):
    """K separate MLPs D_k: Linear(d,64)-Tanh-Linear(64,64)-Tanh-Linear(64,1), outputting the logit
    z_k(x) = log D_k(x) - log(1 - D_k(x)), where D_k(x) = sigmoid(z_k(x)) = P(x is expert)."""

    def __init__(self, n_agents: int, d_in: int, hidden: int = 64):
        super().__init__()
        tanh_gain = nn.init.calculate_gain("tanh")
        self.net = nn.Sequential(StackedLinear(n_agents, d_in, hidden, gain=tanh_gain), nn.Tanh(),
                                 StackedLinear(n_agents, hidden, hidden, gain=tanh_gain), nn.Tanh(),
                                 StackedLinear(n_agents, hidden, 1, gain=1.0))

    def forward(self, x):  # x[..., K, d_in] -> logits z[..., K]
        return self.net(x).squeeze(-1)


def masked_mean_per_agent(x, mask):
    """x[..., K], mask[..., K] -> [K]: each agent's mean over its own real samples."""
    dims = tuple(range(x.dim() - 1))
    return (x * mask).sum(dims) / mask.sum(dims).clamp(min=1.0)


def sample_real_steps(x, mask, n: int, generator):
    """n steps per agent drawn uniformly (with replacement) from agent k's real steps only.
    x[B, T, K, d], mask[B, T, K] -> [n, K, d]."""
    K = x.shape[2]
    flat_x, flat_m = x.flatten(0, 1), mask.flatten(0, 1)  # [B*T, K, d], [B*T, K]
    idx = torch.multinomial(flat_m.T.cpu(), n, replacement=True, generator=generator).to(x.device)  # [K, n]
    return flat_x[idx.T, torch.arange(K, device=x.device)]  # [n, K, d]


def gradient_penalty(D: Discriminators, x_hat):
    """(||∇_x̂ z_k(x̂)||_2 - 1)^2 averaged over the points, per agent. x_hat[M, K, d] -> [K].
    Summing the logits before differentiating is exact: z_k at point m depends on x_hat[m, k] only."""
    x_hat = x_hat.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)  # [M, K, d]
    return ((grad.norm(dim=-1) - 1.0) ** 2).mean(0)


def discriminator_loss(D: Discriminators, x_E, m_E, x_A, m_A, grad_penalty: float, generator):
    """The GAIL discriminator objective, per agent k (a [K] vector; term k depends on D_k only):

        L_k = - E_{x ~ expert_k}[log D_k(x)] - E_{x ~ agent_k}[log(1 - D_k(x))]
              + λ E_{x̂}[(||∇_x̂ z_k(x̂)||_2 - 1)^2],      x̂ = u x_E + (1 - u) x_A,  u ~ U(0, 1)

    with D_k = sigmoid(z_k), expectations over real (unpadded) steps only, x_E / x_A a uniformly
    drawn real expert / agent step, and as many interpolation points as the agent batch's real steps.
    x_E[nE, TE, K, d], m_E[nE, TE, K], x_A[nA, TA, K, d], m_A[nA, TA, K]."""
    z_E, z_A = D(x_E), D(x_A)  # [nE, TE, K], [nA, TA, K]
    bce_E = masked_mean_per_agent(F.binary_cross_entropy_with_logits(z_E, torch.ones_like(z_E), reduction="none"), m_E)
    bce_A = masked_mean_per_agent(F.binary_cross_entropy_with_logits(z_A, torch.zeros_like(z_A), reduction="none"), m_A)
    M = int(m_A.sum((0, 1)).max().item())
    u = torch.rand(M, x_E.shape[2], 1, generator=generator).to(x_E.device)
    x_hat = u * sample_real_steps(x_E, m_E, M, generator) + (1 - u) * sample_real_steps(x_A, m_A, M, generator)
    gp = gradient_penalty(D, x_hat)
    loss = bce_E + bce_A + grad_penalty * gp
    with torch.no_grad():
        stats = dict(disc_loss=loss, disc_bce=bce_E + bce_A, disc_grad_penalty=gp,
                     disc_expert_acc=masked_mean_per_agent((z_E > 0).float(), m_E),
                     disc_agent_acc=masked_mean_per_agent((z_A < 0).float(), m_A))
    return loss, stats


@torch.no_grad()
def gail_reward(D: Discriminators, x, mask):
    """r_gail = log D_k(x) - log(1 - D_k(x)) = z_k(x), and 0 on padded steps. x[B, T, K, d],
    mask[B, T, K] -> [B, T, K]. (Algorithm 1 writes -log D with D = P(agent): the same direction;
    the log-odds form is the original code's.)"""
    return D(x) * mask


def sample_episodes(n_available: int, n: int, n_agents: int, generator) -> torch.Tensor:
    """Each agent draws its own n distinct episodes (all of them if fewer): idx[n, K]."""
    n = min(n, n_available)
    return torch.rand(n_agents, n_available, generator=generator).argsort(dim=1)[:, :n].T


def discounted_return(reward, mask, gamma: float):
    """reward[B, T], mask[B, T] -> sum_t gamma^t r_t over real steps [B]."""
    discount = gamma ** torch.arange(reward.shape[1], dtype=reward.dtype, device=reward.device)
    return (reward * mask * discount).sum(1)


class DM2(IPPO):
    name = "dm2"

    def __init__(self, spec: EnvSpec, hp: HP, device="cpu", demo=None, target: str = "demo",
                 discriminator_input: str = "obs", reward: str = "mixed"):
        super().__init__(spec, hp, device)
        if target not in TARGETS or discriminator_input not in DISCRIMINATOR_INPUTS or reward not in REWARDS:
            raise ValueError(f"DM2 options: target in {TARGETS}, discriminator_input in {DISCRIMINATOR_INPUTS}, "
                             f"reward in {REWARDS}; got {target!r}, {discriminator_input!r}, {reward!r}")
        self.target, self.discriminator_input, self.reward = target, discriminator_input, reward
        K, D, A = spec.n_agents, spec.obs_dim, spec.n_actions
        d_in = D + (A if discriminator_input == "obs_action" else 0)
        self.D = Discriminators(K, d_in, hp.gail_hidden).to(self.device)
        self.D_opt = torch.optim.Adam(self.D.parameters(), lr=hp.gail_lr)
        # own RNG for episode sampling and interpolation, seeded from torch's global RNG (seeded by the
        # trainer) and checkpointed, so a resumed run draws the same numbers
        self.generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        self.demo = demo
        if target == "demo":
            if demo is None:
                raise ValueError("DM2 with target='demo' needs a demonstration (demo=...)")
            E = hp.demo_episodes
            if demo.n_episodes < E:
                raise ValueError(f"{demo.path} has {demo.n_episodes} episodes per agent, hp.demo_episodes={E} "
                                 "asks for more: collect more or lower hp.demo_episodes")
            # expert data of agent k = the first E episodes of agent k's data (the file's style decides which
            # joint episodes those are). Views into the demo: obs stays float16 until gathered.
            T = demo.actions.shape[1]
            self.target_obs = demo.obs[:E, :T]  # [E, T, K, D] float16
            self.target_actions = demo.actions[:E]  # [E, T, K]
            self.target_mask = demo.mask[:E]  # [E, T, K]
        else:  # SIL: a priority store of the agent's own best past episodes, filled in after_rollout
            S = hp.sil_store_episodes
            self.target_obs = torch.zeros(0, 1, K, D, dtype=torch.float16)
            self.target_actions = torch.zeros(0, 1, K, dtype=torch.long)
            self.target_mask = torch.zeros(0, 1, K)
            self.store_priority = torch.zeros(0)  # [S] discounted env return of each stored episode
            self.store_capacity = S

    # ---- discriminator inputs ----------------------------------------------------------------
    def disc_input(self, obs, actions):
        """obs[..., K, D] (any float dtype), actions[..., K] -> x[..., K, d_in] float32."""
        x = obs.float()
        if self.discriminator_input == "obs_action":
            x = torch.cat([x, F.one_hot(actions, self.spec.n_actions).float()], -1)
        return x

    def target_batch(self, idx):
        """Agent k's target episodes idx[:, k] -> x[n, T, K, d], mask[n, T, K], trimmed to the longest."""
        mask = gather_per_agent(self.target_mask, idx)
        T = max(int(mask.sum(1).max().item()), 1)
        obs, actions = gather_per_agent(self.target_obs[:, :T], idx), gather_per_agent(self.target_actions[:, :T], idx)
        x = self.disc_input(obs, actions)
        return x.to(self.device), mask[:, :T].to(self.device)

    # ---- Algorithm 1, lines 7-11 ---------------------------------------------------------------
    def update_discriminators(self, x_A, m_A) -> dict:
        """hp.gail_epochs steps; each step: every agent's discriminator on gail_batch_episodes of its target
        episodes and as many of its own episodes from the current batch. x_A[B, T, K, d], m_A[B, T, K]."""
        hp, K = self.hp, self.spec.n_agents
        n_target = self.target_obs.shape[0]
        totals = {}
        for _ in range(hp.gail_epochs):
            x_E, m_E = self.target_batch(sample_episodes(n_target, hp.gail_batch_episodes, K, self.generator))
            iA = sample_episodes(x_A.shape[0], hp.gail_batch_episodes, K, self.generator).to(self.device)
            xa, ma = gather_per_agent(x_A, iA), gather_per_agent(m_A, iA)
            loss, stats = discriminator_loss(self.D, x_E, m_E, xa, ma, hp.grad_penalty, self.generator)
            self.D_opt.zero_grad()
            loss.sum().backward()  # sum over agents: D_k's gradient comes from L_k only
            self.D_opt.step()
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v.mean()
        return {k: (v / max(hp.gail_epochs, 1)).item() for k, v in totals.items()}

    def agent_rewards(self, batch: EpisodeBatch) -> tuple[torch.Tensor, dict]:
        hp, K = self.hp, self.spec.n_agents
        T = batch.actions.shape[1]
        x_A = self.disc_input(batch.obs[:, :T], batch.actions)  # [B, T, K, d]: o_t (and a_t) of every step
        m_A = batch.mask.unsqueeze(-1).expand(-1, -1, K)  # [B, T, K]
        stats = {}
        if self.target_obs.shape[0] > 0:
            # the agent store is the current on-policy batch, at most gail_buffer_episodes episodes
            n = min(batch.n_episodes, hp.gail_buffer_episodes)
            stats = self.update_discriminators(x_A[:n], m_A[:n])
        r_gail = gail_reward(self.D, x_A, m_A)  # [B, T, K], 0 on padding
        r_env = batch.reward.unsqueeze(-1).expand(-1, -1, K)  # [B, T, K] (0 on padding)
        r = r_env + hp.gail_coef * r_gail if self.reward == "mixed" else r_gail
        stats["r_gail_mean"] = masked_mean_per_agent(r_gail, m_A).mean().item()
        stats["r_env_mean"] = masked_mean_per_agent(r_env, m_A).mean().item()
        if self.target == "self":
            stats["sil_store_episodes"] = float(self.target_obs.shape[0])
            stats["sil_store_priority_mean"] = self.store_priority.mean().item() if len(self.store_priority) else 0.0
        return r, stats

    # ---- SIL target store ----------------------------------------------------------------------
    def after_rollout(self, batch: EpisodeBatch) -> None:
        """SIL: keep the store_capacity episodes with the highest discounted env return seen so far
        (the team reward is shared, so each agent's own store would hold the same joint episodes:
        one store of per-agent slices equals K stores). Older episodes win ties."""
        if self.target != "self":
            return
        K = self.spec.n_agents
        new_G = discounted_return(batch.reward, batch.mask, self.hp.gamma).cpu()  # [B]
        T = max(self.target_obs.shape[1], batch.actions.shape[1])

        def pad(x):  # x[S, t, ...] -> x[S, T, ...], zeros appended in time (masked)
            return F.pad(x, (0, 0) * (x.dim() - 2) + (0, T - x.shape[1]))

        new_obs = batch.obs[:, : batch.actions.shape[1]].to("cpu", torch.float16)
        obs = torch.cat([pad(self.target_obs), pad(new_obs)])
        actions = torch.cat([pad(self.target_actions), pad(batch.actions.cpu())])
        mask = torch.cat([pad(self.target_mask), pad(batch.mask.cpu().unsqueeze(-1).expand(-1, -1, K))])
        G = torch.cat([self.store_priority, new_G])
        keep = torch.argsort(-G, stable=True)[: self.store_capacity]
        T_keep = max(int(mask[keep].sum(1).max().item()), 1)  # trim time to the longest kept episode
        self.target_obs, self.target_actions = obs[keep, :T_keep].clone(), actions[keep, :T_keep].clone()
        self.target_mask, self.store_priority = mask[keep, :T_keep].clone(), G[keep].clone()

    # ---- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        sd = super().state_dict()
        sd.update(discriminator=self.D.state_dict(), discriminator_opt=self.D_opt.state_dict(),
                  generator=self.generator.get_state())
        if self.target == "self":
            sd["sil_store"] = dict(obs=self.target_obs, actions=self.target_actions.to(torch.int16),
                                   mask=self.target_mask.to(torch.bool), priority=self.store_priority)
        return sd

    def load_state_dict(self, sd: dict) -> None:
        super().load_state_dict(sd)
        self.D.load_state_dict(sd["discriminator"])
        self.D_opt.load_state_dict(sd["discriminator_opt"])
        self.generator.set_state(sd["generator"])
        if self.target == "self":
            store = sd["sil_store"]
            self.target_obs, self.target_actions = store["obs"].to(torch.float16), store["actions"].long()
            self.target_mask, self.store_priority = store["mask"].float(), store["priority"]
