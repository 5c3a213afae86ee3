"""One benchmark measurement in a fresh process, printed as one JSON line.

Run by `dm2_repro.bench` as a script, with PYTHONPATH pointing at the tree to measure (this tree,
or an older commit checked out as a git worktree for `bench --compare`). It uses only interfaces
that every version of the package has had (make_hp, make_env, make_learner, collect, update), so
the same measurement runs on both sides of a comparison.

    python dm2_repro/bench_worker.py '{"kind": "train", "algo": "ippo", "map": "3s_vs_3z", ...}'
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time


def _peak_rss_mb() -> float:
    # tracking.peak_rss_mb's count, written out here: this worker also runs against older trees (bench --compare),
    # which have no such helper. ru_maxrss: KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _setup_threads(threads: int) -> None:
    # before torch/jax are imported: XLA's CPU thread pool and torch's OpenMP pool both obey this
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                                       f"intra_op_parallelism_threads={threads}")


def synthetic_demo(env, hp):
    """A demonstration of hp.demo_episodes episodes from an untrained IPPO team (for timing only:
    the discriminator's cost does not depend on the demonstrator's skill)."""
    from pathlib import Path

    import torch

    from dm2_repro.algos import make_learner
    from dm2_repro.demos import Demo
    from dm2_repro.training.rollout import collect

    torch.manual_seed(12345)
    team = make_learner("ippo", env.spec, hp)
    b = collect(env, team, hp.demo_episodes, (12345, 0), greedy=False, generator=torch.Generator().manual_seed(1))
    E, T, K = b.actions.shape
    per_agent = lambda x: x.unsqueeze(-1).expand(*x.shape, K)  # noqa: E731  joint episode -> every agent
    return Demo(path=Path("synthetic.npz"), sha256="0" * 64, meta={"quality": 0.0}, obs=b.obs.half(),
                actions=b.actions, avail=b.avail[:, :T], mask=per_agent(b.mask), length=per_agent(b.ep_length),
                ep_return=per_agent(b.ep_return), battle_won=per_agent(b.battle_won))


def train_throughput(cfg: dict) -> dict:
    """The training loop (rollout, after_rollout, update) for cfg["iterations"] iterations after a
    warm-up rollout: env steps/s end to end, the fraction of time in updates, and steps/s of the
    rollouts alone."""
    import torch

    from dm2_repro.training.rollout import collect

    if cfg.get("rollout", "python") != "python":  # only trees that have the jitted rollout are asked for it
        from dm2_repro.training.jax_rollout import collector
        collect = collector(cfg["rollout"])  # noqa: F811
    hp, env, learner = _case(cfg)
    gen = torch.Generator().manual_seed(cfg.get("seed", 0))
    n_eps, start_rollout = _protocol(learner, hp)
    # warm-up: one rollout of n_envs episodes compiles the env step (JAX compiles per shape); it also
    # fills QMIX's replay buffer and SIL's store, so the timed iterations all train
    learner.after_rollout(collect(env, learner, hp.n_envs, (cfg.get("seed", 0), 10**6), greedy=False, generator=gen))
    steps = lockstep = t_update = t_collect = 0.0
    t_start = time.perf_counter()
    for it in range(cfg["iterations"]):
        start_rollout(int(steps))
        t0 = time.perf_counter()
        batch = collect(env, learner, n_eps, (cfg.get("seed", 0), it), greedy=False, generator=gen)
        t1 = time.perf_counter()
        learner.after_rollout(batch)
        learner.update(batch)
        t2 = time.perf_counter()
        steps += batch.n_steps
        lockstep += batch.actions.shape[0] * batch.actions.shape[1]  # every env stepped until the longest ended
        t_collect += t1 - t0
        t_update += t2 - t1
    total = time.perf_counter() - t_start
    return dict(env_steps_per_s=steps / total, update_fraction=t_update / total,
                collect_steps_per_s=steps / t_collect, collect_lockstep_per_s=lockstep / t_collect, env_steps=int(steps),
                peak_rss_mb=_peak_rss_mb())


def _case(cfg: dict):
    """(hp, env, learner) of a case: its preset and overrides, SMAX with hp.n_envs envs, the
    synthetic demonstration where the case asks for one, the learner seeded with cfg's seed (0)."""
    import torch

    from dm2_repro.algos import make_learner
    from dm2_repro.config import make_hp
    from dm2_repro.envs import make_env

    torch.set_num_threads(cfg["threads"])
    hp = make_hp(cfg["algo"], cfg["map"], cfg.get("scale", "cpu"), cfg.get("hp", {}))
    env = make_env("smax", cfg["map"], hp.n_envs)
    demo = synthetic_demo(env, hp) if cfg.get("demo") == "synthetic" else None
    torch.manual_seed(cfg.get("seed", 0))
    # gail_reward only where the case names it: older trees (--compare) have no such argument
    form = {"gail_reward": cfg["gail_reward"]} if "gail_reward" in cfg else {}
    return hp, env, make_learner(cfg["algo"], env.spec, hp, demo=demo, **form)


def _protocol(learner, hp):
    """(episodes per rollout, start_rollout) of a learner of this tree or of an older one (`bench
    --compare REV` runs this file against older trees, from before the Learner protocol, whose trainer
    set `learner.t_env` and read an optional `episodes_per_rollout`)."""
    if hasattr(learner, "start_rollout"):
        return learner.episodes_per_rollout, learner.start_rollout
    return getattr(learner, "episodes_per_rollout", hp.buffer_episodes), lambda t: setattr(learner, "t_env", t)


def raw_smax(cfg: dict) -> dict:
    """SMAX's ceiling: n_envs envs with random valid actions, the whole rollout in one jitted scan."""
    import jax
    import jax.numpy as jnp

    from dm2_repro.envs.maps import map_info
    from dm2_repro.envs.smax import make_jaxmarl_env

    n_envs, n_steps = cfg["n_envs"], cfg.get("steps", 500)
    env = make_jaxmarl_env(cfg["map"], max_steps=map_info(cfg["map"]).episode_limit)
    agents = env.agents

    def one_step(states, key):
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
    return dict(env_steps_per_s=n_envs * n_steps / (time.perf_counter() - t0))


def unroll_full_grid(cfg: dict) -> dict:
    """Forward + backward of one K-agent actor over a whole [B, T] grid, no lengths (BC's path):
    ms per call, mean of 5 after 2 warm-up calls. Uses only RecurrentAgentNet.unroll (every tree has it)."""
    import torch

    from dm2_repro.networks import RecurrentAgentNet

    torch.set_num_threads(cfg["threads"])
    K, d, A, T, B = cfg["K"], cfg["d_in"], cfg["n_actions"], cfg["T"], cfg["B"]
    torch.manual_seed(0)
    net = RecurrentAgentNet(K, d, A, hidden=64)
    x = torch.randn(B, T, K, d)  # [B, T, K, d_in]
    for _ in range(2):
        net.unroll(x).square().sum().backward()
    t0, n = time.perf_counter(), 5
    for _ in range(n):
        net.zero_grad()
        net.unroll(x).square().sum().backward()
    return dict(ms=(time.perf_counter() - t0) / n * 1e3)


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")   # the ops the profiler counts FLOPs of
OP_GROUPS = {   # where an update's time goes, by kind of kernel (self CPU time of the ops)
    "matmul": MATMUL_OPS,
    "activations (sigmoid, tanh, relu, softmax)": ("aten::sigmoid", "aten::tanh", "aten::relu", "aten::clamp_min", "aten::_softmax",
                                                   "aten::_log_softmax", "aten::sigmoid_backward",
                                                   "aten::tanh_backward", "aten::threshold_backward",
                                                   "aten::_softmax_backward_data", "aten::_log_softmax_backward_data"),
    "elementwise arithmetic": ("aten::mul", "aten::add", "aten::sub", "aten::addcmul", "aten::addcmul_", "aten::lerp", "aten::div", "aten::add_", "aten::mul_",
                               "aten::rsub", "aten::neg", "aten::exp", "aten::clamp", "aten::where", "aten::pow"),
    "copies (cat, copy_, stack, index)": ("aten::cat", "aten::copy_", "aten::stack", "aten::index",
                                          "aten::index_put_", "aten::gather", "aten::scatter_add_",
                                          "aten::clone", "aten::contiguous", "aten::fill_", "aten::zero_"),
    "layer norm": ("aten::native_layer_norm", "aten::native_layer_norm_backward"),
    "optimizer and reductions": ("aten::_foreach_mul_", "aten::_foreach_add_", "aten::_foreach_addcmul_",
                                 "aten::_foreach_addcdiv_", "aten::_foreach_sqrt", "aten::_foreach_div_",
                                 "aten::_foreach_lerp_", "aten::sum", "aten::mean", "aten::norm",
                                 "aten::linalg_vector_norm", "aten::_foreach_norm"),
}


def profile_update(cfg: dict) -> dict:
    """One update of a case on one batch, under torch.profiler: its wall time without the profiler
    (mean of 2, after a warm-up update), the FLOPs of its matmuls and their rate, and where its self
    CPU time goes (kernel groups and the top ops). Everything runs in this process, 1 batch."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from dm2_repro.training.rollout import collect

    hp, env, learner = _case(cfg)
    n_eps, start_rollout = _protocol(learner, hp)
    start_rollout(0)
    gen = torch.Generator().manual_seed(0)
    batch = collect(env, learner, n_eps, (0, 0), greedy=False, generator=gen)
    learner.after_rollout(batch)
    learner.update(batch)   # warm-up: allocator caches, lazy optimizer state
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        learner.update(batch)
        times.append(time.perf_counter() - t0)
    update_s = sum(times) / len(times)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True, record_shapes=True) as prof:
        learner.update(batch)
    events = prof.key_averages()
    self_us = {e.key: e.self_cpu_time_total for e in events}
    total_us = sum(self_us.values())
    flops = sum(e.flops for e in events if e.key in MATMUL_OPS)
    groups = {g: sum(self_us.get(op, 0.0) for op in ops) / total_us for g, ops in OP_GROUPS.items()}
    groups["other"] = 1.0 - sum(groups.values())
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:cfg.get("top", 12)]
    # the matmuls' own rate, shape by shape: what the update would run at if it were arithmetic bound
    shapes = sorted((e for e in prof.key_averages(group_by_input_shape=True) if e.key in MATMUL_OPS and e.flops),
                    key=lambda e: -e.self_cpu_time_total)[:cfg.get("top_shapes", 8)]
    return dict(update_ms=update_s * 1e3, env_steps=int(batch.n_steps), T=int(batch.actions.shape[1]),
                episodes=int(batch.actions.shape[0]), matmul_gflop=flops / 1e9,
                matmul_gflop_per_s=flops / 1e9 / update_s, profiled_ms=total_us / 1e3, groups=groups,
                top=[dict(op=e.key, share=e.self_cpu_time_total / total_us, calls=e.count,
                          us_per_call=e.self_cpu_time_total / max(e.count, 1)) for e in top],
                matmul_shapes=[dict(op=e.key, shapes=str(e.input_shapes), calls=e.count,
                                    share=e.self_cpu_time_total / total_us,
                                    gflop_per_s=e.flops / 1e3 / max(e.self_cpu_time_total, 1e-9)) for e in shapes])


def main(argv: list[str]) -> None:
    cfg = json.loads(argv[1])
    _setup_threads(cfg.get("threads", 1))
    if cfg.get("ready_file"):  # concurrent runs start their timed part together
        open(cfg["ready_file"], "w").close()
    fn = {"train": train_throughput, "raw": raw_smax, "unroll": unroll_full_grid, "profile": profile_update}[cfg["kind"]]
    out = fn(cfg)
    sys.stdout.flush()
    print("BENCH " + json.dumps(out), file=sys.__stdout__, flush=True)  # jaxmarl resets sys.stdout


if __name__ == "__main__":
    main(sys.argv)
