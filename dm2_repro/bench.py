"""Training-speed benchmark: raw SMAX throughput vs end-to-end training throughput.

    python -m dm2_repro.bench --map 5m_vs_6m --n-envs 64 --algos ippo qmix rmappo

Raw: N envs, random valid actions, the whole rollout inside one jitted lax.scan (SMAX's ceiling).
End to end: the real training loop (rollouts through the batched env + the learner's updates)
at the `cpu` preset with n_envs=N and buffer = N episodes, for a fixed number of iterations.
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import torch

from .algos import make_learner
from .config import make_hp
from .envs import make_env
from .envs.maps import map_info
from .envs.smax import make_jaxmarl_env
from .rollout import collect


def raw_env_steps_per_s(map_name: str, n_envs: int, n_steps: int = 500) -> float:
    env = make_jaxmarl_env(map_name, max_steps=map_info(map_name).episode_limit)
    agents = env.agents

    def one_step(carry, key):
        states = carry
        k_act, k_step = jax.random.split(key)
        avail = jax.vmap(env.get_avail_actions)(states)
        acts = {a: jax.random.categorical(k, jnp.log(avail[a].astype(jnp.float32)))
                for a, k in zip(agents, jax.random.split(k_act, len(agents)))}
        _, states, _, _, _ = jax.vmap(env.step)(jax.random.split(k_step, n_envs), states, acts)
        return states, None

    @jax.jit
    def rollout(key):
        _, states = jax.vmap(env.reset)(jax.random.split(key, n_envs))
        states, _ = jax.lax.scan(one_step, states, jax.random.split(key, n_steps))
        return states

    jax.block_until_ready(rollout(jax.random.PRNGKey(0)))  # compile
    t0 = time.perf_counter()
    jax.block_until_ready(rollout(jax.random.PRNGKey(1)))
    return n_envs * n_steps / (time.perf_counter() - t0)


def end_to_end_steps_per_s(algo: str, map_name: str, n_envs: int, iterations: int) -> tuple[float, float]:
    """(env steps/s of the whole loop, fraction of time in updates)."""
    hp = make_hp(algo, map_name, "cpu", dict(n_envs=n_envs, buffer_episodes=n_envs, rmappo_buffer_episodes=n_envs))
    env = make_env("smax", map_name, n_envs)
    learner = make_learner(algo, env.spec, hp)
    gen = torch.Generator().manual_seed(0)
    n_eps = getattr(learner, "episodes_per_rollout", hp.buffer_episodes)
    collect(env, learner, n_envs, (0, 10**6), greedy=False, generator=gen)  # compile the env step
    steps, t_update, t0 = 0, 0.0, time.perf_counter()
    for it in range(iterations):
        learner.t_env = steps
        batch = collect(env, learner, n_eps, (0, it), greedy=False, generator=gen)
        t1 = time.perf_counter()
        learner.after_rollout(batch)
        learner.update(batch)
        t_update += time.perf_counter() - t1
        steps += batch.n_steps
    total = time.perf_counter() - t0
    return steps / total, t_update / total


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--map", default="5m_vs_6m")
    p.add_argument("--n-envs", type=int, default=64)
    p.add_argument("--algos", nargs="+", default=["ippo", "qmix", "rmappo"])
    p.add_argument("--iterations", type=int, default=3)
    a = p.parse_args(argv)
    print(f"map={a.map} N={a.n_envs} torch_threads={torch.get_num_threads()}")
    raw = raw_env_steps_per_s(a.map, a.n_envs)
    print(f"raw SMAX (jitted scan, random valid actions): {raw:,.0f} env steps/s")
    for algo in a.algos:
        sps, frac = end_to_end_steps_per_s(algo, a.map, a.n_envs, a.iterations)
        print(f"end-to-end {algo:>8}: {sps:,.0f} env steps/s  ({sps / raw:.3f} of raw; {frac:.0%} of time in updates)")


if __name__ == "__main__":
    main()
