"""Whole episodes collected inside one jitted JAX program (train's `rollout=jax`).

`rollout.collect` steps the env from Python: per step one jitted env call, one torch forward of the
actor and two host copies, so on a CPU it runs at 6-21% of what SMAX itself can do (README, Training
speed). Here the actor's forward pass is rewritten in JAX and traced, together with the env's
batched step (`envs.base.BatchedFns`), into `lax.scan`s of CHUNK steps: a handful of calls and host
copies per round of N episodes instead of two per step.

Same episodes, other random stream: the env's keys are split exactly as on the host path, so a
greedy policy collects the same episodes (tests/test_jax_rollout.py); a sampling policy draws its
actions from the same distributions but with JAX's generator (keyed per round from the trainer's
torch generator, so a run and its resumption still draw the same numbers) instead of torch's.
The actor is read from the learner's `acting_net()` (algos.common.ActingNet): K stacked networks
(IPPO and DM²'s variants) or one parameter-shared network (RMAPPO, QMIX), sampling its softmax or
epsilon-greedy on its Q-values. Only JAX envs (SMAX, JaxMARL tasks) have a traceable step.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from dm2_repro.algos.common import NEG_INF, ActingNet
from dm2_repro.config import ROLLOUTS
from dm2_repro.envs.base import BatchedEnv, JaxBatchedEnv
from dm2_repro.training.rollout import EpisodeBatch, episode_seed

LN_EPS = 1e-5  # torch.nn.functional.layer_norm's default


def check_rollout(rollout: str, env: BatchedEnv | None = None) -> str:
    if rollout not in ROLLOUTS:
        raise ValueError(f"unknown rollout {rollout!r}; valid: {', '.join(ROLLOUTS)}")
    if rollout == "jax" and env is not None and not isinstance(env, JaxBatchedEnv):
        raise ValueError(f"rollout=jax needs a JAX env (smax, JaxMARL tasks); {type(env).__name__} steps on the "
                         "host: use rollout=python")
    return rollout


def collector(rollout: str, env: BatchedEnv | None = None):
    """The collect function of train's `rollout` key: rollout.collect (host loop) or this module's
    (checked against `env` where given)."""
    from dm2_repro.training import rollout as host

    return host.collect if check_rollout(rollout, env) == "python" else collect


def net_params(acting: ActingNet) -> list[np.ndarray]:
    """The acting net's weights as float32 arrays, in the order `forward` reads them: the trunk
    (RecurrentAgentNet.trunk_params) then the head."""
    ps = acting.net.trunk_params() + [acting.net.head.weight, acting.net.head.bias]
    return [p.detach().to("cpu", torch.float32).numpy() for p in ps]


def forward(params, x, h, layer_norm: bool, n_fc: int):
    """RecurrentAgentNet's step in JAX (nets.py: LN -> [fc ReLU LN] x n_fc -> GRU -> LN -> head, LNs
    optional), stack-first: x[G, M, d_in], h[G, M, H] -> out[G, M, d_out], h'[G, M, H]."""
    import jax
    import jax.numpy as jnp

    it = iter(params)
    it_norms = iter([(next(it), next(it)) for _ in range(n_fc + 2)] if layer_norm else [])  # read first

    def maybe_norm(v):
        if not layer_norm:
            return v
        w, b = next(it_norms)
        mu = v.mean(-1, keepdims=True)
        var = ((v - mu) ** 2).mean(-1, keepdims=True)
        return (v - mu) / jnp.sqrt(var + LN_EPS) * w[:, None] + b[:, None]

    def linear(v, w, b):  # v[G, M, a], w[G, a, b], b[G, b]
        return jnp.einsum("gma,gab->gmb", v, w) + b[:, None]

    x = maybe_norm(x)
    for _ in range(n_fc):
        x = maybe_norm(jax.nn.relu(linear(x, next(it), next(it))))
    w_ih, b_ih, w_hh, b_hh = next(it), next(it), next(it), next(it)
    H = h.shape[-1]
    gi, gh = linear(x, w_ih, b_ih), linear(h, w_hh, b_hh)
    rz = jax.nn.sigmoid(gi[..., : 2 * H] + gh[..., : 2 * H])
    n = jnp.tanh(gi[..., 2 * H:] + rz[..., :H] * gh[..., 2 * H:])
    h = n + rz[..., H:] * (h - n)  # (1 - z) n + z h
    return linear(maybe_norm(h), next(it), next(it)), h


def agent_inputs(obs, last_action, n_actions: int):
    """nets.agent_inputs in JAX: obs[N, K, D], last_action[N, K] (-1: none) -> [N, K, D + A + K]."""
    import jax
    import jax.numpy as jnp

    K = obs.shape[1]
    onehot = jax.nn.one_hot(jnp.maximum(last_action, 0), n_actions) * (last_action >= 0)[..., None]
    agent_id = jnp.broadcast_to(jnp.eye(K), obs.shape[:2] + (K,))
    return jnp.concatenate([obs, onehot, agent_id], -1)


CHUNK = 8  # env steps per jitted call: the host checks after each chunk whether every episode has ended


@functools.lru_cache(maxsize=None)
def programs(batched, n_envs: int, n_agents: int, n_actions: int, hidden: int, layer_norm: bool, n_fc: int,
             shared: bool, mode: str):
    """The jitted pair (start, chunk) of a round of n_envs episodes, compiled once per env, batch size,
    architecture and mode (greedy: argmax; sample: the softmax; epsilon: epsilon-greedy on Q):
      start(seed key, policy key) -> loop state (env key, carry, h, last action, policy key)
      chunk(state, params, epsilon) -> (state, steps, every episode ended?): CHUNK steps of a `lax.scan`
    (a scan writes its per-step outputs in place; a while_loop's carried buffers were copied every step)."""
    import jax
    import jax.numpy as jnp

    N, K, A = n_envs, n_agents, n_actions
    G, M = (1, N * K) if shared else (K, N)  # the net's stacks and rows

    def act(params, obs, avail, last, h, key, eps):
        x = agent_inputs(obs, last, A)  # [N, K, d]
        x = x.reshape(1, N * K, -1) if shared else x.transpose(1, 0, 2)  # [G, M, d]
        out, h = forward(params, x, h, layer_norm, n_fc)
        out = out.reshape(N, K, A) if shared else out.transpose(1, 0, 2)  # [N, K, A]
        masked = jnp.where(avail, out, NEG_INF)
        if mode == "greedy":
            return masked.argmax(-1), h
        if mode == "sample":
            return jax.random.categorical(key, masked, -1), h
        k_random, k_explore = jax.random.split(key)
        random_a = jax.random.categorical(k_random, jnp.where(avail, 0.0, -jnp.inf), -1)
        explore = jax.random.uniform(k_explore, (N, K)) < eps
        return jnp.where(explore, random_a, masked.argmax(-1)), h

    def start(seed_key, policy_key):
        k_reset, env_key = jax.random.split(seed_key)  # as JaxBatchedEnv.reset
        carry = batched.reset(k_reset, N)
        return env_key, carry, jnp.zeros((G, M, hidden), jnp.float32), jnp.full((N, K), -1, jnp.int32), policy_key

    def chunk(state, params, eps):
        def step(s, _):
            env_key, carry, h, last, policy_key = s
            policy_key, k_act = jax.random.split(policy_key)
            a, h = act(params, carry["obs"], carry["avail"], last, h, k_act, eps)
            a = a.astype(jnp.int32)
            was_done = carry["done"]
            env_key, carry, r = batched.step(env_key, carry, a)
            out = dict(obs=carry["obs"], world=carry["world"], avail=carry["avail"], actions=a, reward=r,
                       terminated=carry["terminated"], mask=~was_done)
            return (env_key, carry, h, a, policy_key), out

        state, steps = jax.lax.scan(step, state, None, length=CHUNK)
        return state, steps, jnp.all(state[1]["done"])

    return jax.jit(start), jax.jit(chunk)


def collect(env: JaxBatchedEnv, policy, n_episodes: int, seed_counter: tuple[int, int], greedy: bool,
            generator: torch.Generator, device="cpu") -> EpisodeBatch:
    """rollout.collect's contract (same rounds, env seeds and EpisodeBatch) with every round a few calls
    of the jitted `programs`. policy: a learner (its acting_net())."""
    import jax

    check_rollout("jax", env)
    acting: ActingNet = policy.acting_net()
    net, spec = acting.net, env.spec
    mode = "greedy" if greedy else ("sample" if acting.epsilon is None else "epsilon")
    if mode == "epsilon" and acting.epsilon <= 0.0:
        mode = "greedy"
    start, chunk = programs(env.batched, env.n_envs, spec.n_agents, spec.n_actions, net.hidden, net.layer_norm,
                            net.n_fc, acting.shared, mode)
    params = [jax.numpy.asarray(p) for p in net_params(acting)]
    eps = np.float32(acting.epsilon or 0.0)
    run_seed, counter = seed_counter
    batches = []
    for r in range(math.ceil(n_episodes / env.n_envs)):
        policy_seed = 0 if mode == "greedy" else int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())
        state = start(jax.random.PRNGKey(episode_seed(run_seed, counter + r)), jax.random.PRNGKey(policy_seed))
        first = {k: np.asarray(state[1][k]) for k in ("obs", "world", "avail")}
        chunks = []
        for _ in range(math.ceil(spec.episode_limit / CHUNK)):  # every episode ends by the time limit
            state, steps, ended = chunk(state, params, eps)
            chunks.append(jax.device_get(steps))
            if bool(ended):
                break
        steps = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}  # [C*chunks, N, ...]
        T = int(steps["mask"].any(1).nonzero()[0].max()) + 1  # the host loop's steps: until every env ended
        carry = state[1]

        def series(name, dtype):  # [T(+1), N, ...] -> [N, T(+1), ...] torch
            x = steps[name][:T]
            if name in first:
                x = np.concatenate([first[name][None], x])
            return torch.from_numpy(np.ascontiguousarray(x.swapaxes(0, 1))).to(dtype)

        batches.append(EpisodeBatch(
            obs=series("obs", torch.float32), state=series("world", torch.float32), avail=series("avail", torch.bool),
            actions=series("actions", torch.long), reward=series("reward", torch.float32),
            terminated=series("terminated", torch.float32), mask=series("mask", torch.float32),
            battle_won=torch.from_numpy(np.array(carry["won"] if "won" in carry else np.zeros(env.n_envs), np.float32)),
            ep_return=torch.from_numpy(np.array(carry["ret"], np.float32)),
            ep_length=torch.from_numpy(np.array(carry["t"], np.int64))))
    batch = EpisodeBatch.cat(batches)
    if batch.n_episodes > n_episodes:
        batch = batch.index(slice(0, n_episodes))
    return batch.to(device)
