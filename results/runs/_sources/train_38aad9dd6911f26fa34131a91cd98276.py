"""One training run as a Sacred run.

    python -m dm2_repro.train with algo=ippo map=3s_vs_3z seed=1 scale=cpu
    python -m dm2_repro.train with algo=dm2 map=3s_vs_3z seed=1 scale=cpu demo=results/demos/X.npz
    python -m dm2_repro.train with resume=results/runs/7        # continue a killed run

Every run writes results/runs/<id>/ (config.json, metrics.json, run.json, info.json, cout.txt,
checkpoints/); config.json holds the given keys and the resolved hyperparameters (hp_resolved), run.json
the sources of every dm2_repro module the run loads and the git commit with a dirty flag. TensorBoard,
MongoDB and Weights & Biases are optional (tensorboard=True, mongo_url=, wandb_project=): docs/tracking.md.
`python -m dm2_repro.train --help` lists every key.
Randomness derives from (seed, algo): network init, training episodes and action sampling each have
their own stream (`stream_seed`), so a DM² run of seed s never starts from the initialisation, or
sees the episodes, of the IPPO expert of seed s whose demonstrations it imitates, nor of the IPPO
baseline of seed s. Test episodes depend on `seed` alone: every algorithm of seed s is evaluated on
the same test episodes (paired on purpose; they train nothing). The env seeds of every rollout
derive from (stream, rollout counter), so a resumed run continues the very same curve.

Threads: `threads` (default 1) sets torch's and XLA's CPU threads. One thread per run is the
default because two runs with torch's default two threads each on a 2-core machine collapse ~30x
(OpenMP threads spinning against each other); a lone run gains little from a second thread.

Reference: docs/training.md.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import sys
import time
from pathlib import Path

_checked: tuple[list[str], dict] | None = None  # (argv, its checked config) when run as a program
if __name__ == "__main__":  # `python -m dm2_repro.train`: a bad input fails here, before torch, JAX and Sacred load
    from dm2_repro.validate import check_train_argv as _check_argv, help_requested, train_help

    if help_requested(sys.argv):
        print(train_help())
        raise SystemExit(0)
    _checked = (list(sys.argv), _check_argv(sys.argv))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sacred import Experiment, SETTINGS  # noqa: E402
from sacred.observers import FileStorageObserver  # noqa: E402
from sacred.utils import apply_backspaces_and_linefeeds  # noqa: E402
from tqdm import tqdm  # noqa: E402

from dm2_repro.algos import capabilities, make_learner  # noqa: E402
from dm2_repro.config import hp_dict, make_hp  # noqa: E402
from dm2_repro.envs import make_env  # noqa: E402
from dm2_repro.training.jax_rollout import collector  # noqa: E402
from dm2_repro.training.rollout import collect  # noqa: E402
from dm2_repro.training import tracking
from dm2_repro.training.snapshots import snapshot_path, snapshot_steps  # noqa: E402
from dm2_repro.validate import (  # noqa: E402,F401  (RUN_KEYS and resolve_resume are part of this module's API)
    CHECKPOINT_FORMAT, RUN_KEYS, DamagedFile, InputError, atomic_copy, atomic_write, atomic_write_text,
    check_checkpoint_meta, check_train_argv, check_train_config, fail, first_line, help_requested, resolve_in_results,
    not_a_file, peek_torch_file, resolve_resume, train_help)

SETTINGS.CAPTURE_MODE = "sys"  # fd capture breaks progress bars and subprocess use
SETTINGS.CONFIG.READ_ONLY_CONFIG = False

ex = Experiment("dm2_repro", save_git_info=False)  # git: tracking.record_sources, without GitPython
ex.captured_out_filter = apply_backspaces_and_linefeeds  # cout.txt: a progress bar's last state, not every redraw
EVAL_SEED_OFFSET = 10_007
# RUN_KEYS (what makes a run that run: fixed on resume) and resolve_resume live in dm2_repro.validate


@ex.config
def config():
    algo = "ippo"  # noqa: F841  learner: see dm2_repro.algos.ALGOS
    map = "3s_vs_3z"  # noqa: F841,A001  SMAC map name
    seed = 1  # noqa: F841
    scale = "cpu"  # noqa: F841  smoke | cpu | paper
    backend = "smax"  # noqa: F841  smax | sc2
    reward = "smac"  # noqa: F841  smac: SMAC's reward (damage + 10 per kill + 200 per win, max 20), on SMAX too; smax: SMAX's own x 10
    demo = ""  # noqa: F841  demonstration .npz for dm2-family algos
    tag = ""  # noqa: F841  free label, used by experiment definitions
    hp = {}  # noqa: F841  overrides of dm2_repro.config.HP fields
    device = "cpu"  # noqa: F841  cpu | cuda
    resume = ""  # noqa: F841  run dir to continue from its last checkpoint
    results = "results"  # noqa: F841  the run goes to RESULTS/runs/<id>/ (old name: results_dir)
    tensorboard = False  # noqa: F841  also write TensorBoard event files to RUN/tb/<algo>/<map>/seed<seed>/
    mongo_url = ""  # noqa: F841  also record to MongoDB (Omniboard); recorded without its password
    wandb_project = ""  # noqa: F841  also log to this Weights & Biases project
    threads = 1  # noqa: F841  torch + XLA CPU threads of this run (1: safe when runs share the machine)
    rollout = "python"  # noqa: F841  python: env stepped from Python | jax: whole episodes in one jitted program
    gail_reward = "absorbing"  # noqa: F841  absorbing | paper | logit: the GAIL reward's form (docs/dm2.md)
    # every key's meaning: validate.TRAIN_HELP (`--help`); hp_resolved is added by record_run below


@ex.config_hook
def record_run(config, command_name, logger):
    """Before the run starts (and its record is written): the resolved hyperparameters into the
    config (hp_resolved: dashboards filter on them; `hp` stays the overrides, which job matching
    reads), and the sources of every module the run will import, with the git state."""
    tracking.preload(config)
    tracking.record_sources(ex, tracking.git_info())
    hp = make_hp(config["algo"], config["map"], config["scale"], dict(config.get("hp") or {}))
    return {"hp_resolved": hp_dict(hp)}


@ex.post_run_hook
def check_sources(_run):
    missed = tracking.unrecorded_sources(_run)
    if missed:  # a module imported only during the run: its source is not in the record (preload misses it)
        _run.info["unrecorded_sources"] = missed


def stream_seed(seed: int, algo: str, stream: str) -> int:
    """The seed of one random stream of a run: a hash of (seed, algo, stream), so runs of different
    algorithms with the same seed share no stream (init, rollout episodes, action sampling)."""
    digest = hashlib.sha256(f"{int(seed)}|{algo}|{stream}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFF_FFFF


def set_threads(n: int) -> None:
    """torch's intra-op threads and, if XLA has not started yet, its CPU thread pool."""
    n = int(n)
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    torch.set_num_threads(n)
    if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_cpu_multi_thread_eigen={str(n > 1).lower()}"
                                   f" intra_op_parallelism_threads={n}").strip()


def _load_checkpoint(path: Path) -> dict:
    """A checkpoint, loaded weights-only (never executes code); a damaged file is one clear line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        peek_torch_file(path)  # names the damage where it can
        raise DamagedFile(f"{path}: cannot be loaded as a checkpoint ({first_line(exc).split('. ')[0]})") from None
    if not isinstance(state, dict) or not {"learner", "generator", "counters", "metrics"} <= set(state):
        raise DamagedFile(f"{path}: not a dm2_repro.train checkpoint")
    return state


def checkpoint_meta(cfg: dict, spec) -> dict:
    """What every checkpoint and policy snapshot records about the run it belongs to (checked on load)."""
    return dict(format_version=CHECKPOINT_FORMAT, algo=cfg["algo"], map=cfg["map"], backend=cfg["backend"],
                n_agents=spec.n_agents, obs_dim=spec.obs_dim, n_actions=spec.n_actions, state_dim=spec.state_dim)


def _save(obj: dict, path: Path) -> None:
    """torch.save to a unique temporary name, renamed over `path`: a kill never leaves half a file."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


class MetricLogger:
    """Sacred log_scalar plus the run's other dashboards (tracking.open_sinks: TensorBoard, W&B)."""

    def __init__(self, run, sinks=()):
        self.run, self.sinks = run, list(sinks)
        # the whole curve so far: checkpoints carry it, since a killed run's metrics.json may lag behind
        self.history: dict[str, tuple[list[int], list[float]]] = {}

    def log(self, name: str, value: float, step: int):
        steps, values = self.history.setdefault(name, ([], []))
        steps.append(int(step)), values.append(float(value))
        self.run.log_scalar(name, float(value), int(step))
        for sink in self.sinks:
            sink.log(name, float(value), int(step))

    def close(self):
        for sink in self.sinks:
            sink.close()


def evaluate(env, learner, n_episodes: int, seed: int, eval_index: int, device, collect=collect) -> dict:
    """Greedy test episodes (from the eval stream); `collect`: the run's collect function."""
    gen = torch.Generator().manual_seed(seed)
    batch = collect(env, learner, n_episodes, (seed + EVAL_SEED_OFFSET, eval_index * 1000), greedy=True,
                    generator=gen, device=device)
    return dict(test_battle_won_mean=batch.battle_won.mean().item(), test_return_mean=batch.ep_return.mean().item(),
                test_ep_length_mean=batch.ep_length.float().mean().item())


@ex.main
def train(_run, _config, hp):  # hp captured so Sacred accepts `with hp.KEY=VALUE` overrides
    cfg = dict(_config)
    # Sacred orders observers by priority (Mongo first): find the file observer's run dir by type
    file_obs = [o for o in _run.observers if isinstance(o, FileStorageObserver)]
    run_dir = Path(file_obs[0].dir) if file_obs else None
    resume_state = None
    if cfg["resume"]:  # its config was taken from the old run before Sacred started (resolve_resume)
        old_dir = Path(cfg["resume"])
        ckpt = old_dir / "checkpoints" / "last.pt"
        if not ckpt.exists():
            raise FileNotFoundError(f"cannot resume {old_dir}: no checkpoint at {ckpt}")
        resume_state = _load_checkpoint(ckpt)
    set_threads(cfg["threads"])
    device = torch.device(cfg["device"])
    hp = make_hp(cfg["algo"], cfg["map"], cfg["scale"], cfg["hp"])  # the typed HP replaces the overrides dict
    _run.info["hp"] = hp_dict(hp)
    _run.info["pid"] = os.getpid()
    seed, algo = int(cfg["seed"]), cfg["algo"]
    caps = capabilities(algo)
    streams = {k: stream_seed(seed, algo, k) for k in ("init", "rollout", "sampling")}
    # eval episodes come from a seed stream disjoint from training episodes
    _run.info["streams"] = dict(streams, eval=seed + EVAL_SEED_OFFSET)
    torch.manual_seed(streams["init"])
    np.random.seed(streams["init"])
    env = make_env(cfg["backend"], cfg["map"], hp.n_envs, seed=streams["rollout"], reward=cfg["reward"])
    demo = None
    if cfg["demo"]:
        from dm2_repro.demos import load_demo

        demo = load_demo(resolve_in_results(cfg["demo"], cfg["results"]), env.spec)   # recorded: relative to results
        _run.info["demo"] = demo.provenance()
    learner = make_learner(cfg["algo"], env.spec, hp, device, demo=demo, gail_reward=cfg["gail_reward"])
    gen = torch.Generator().manual_seed(streams["sampling"])
    collect_fn = collector(cfg["rollout"], env)  # rollout.collect or jax_rollout.collect
    tracking.start(_run, cfg, run_dir)
    logger = MetricLogger(_run, tracking.open_sinks(cfg, run_dir, _run._id))
    ckpt_dir = run_dir / "checkpoints" if run_dir else None
    if ckpt_dir:
        ckpt_dir.mkdir(exist_ok=True)

    s = dict(env_steps=0, episodes=0, rollouts=0, evals=0, next_eval=0, next_ckpt=hp.checkpoint_every,
             next_snapshot=hp.save_policy_every, pretrained=False, next_log=0)
    # training scalars are logged as means over hp.log_every env steps (metrics.json stays small);
    # the pending sums travel in the checkpoint so a resumed run logs the same means
    pending: dict[str, list[float]] = {}
    if resume_state is not None:
        old_ckpt = Path(cfg["resume"]) / "checkpoints" / "last.pt"
        check_checkpoint_meta(resume_state.get("meta"), old_ckpt, algo, cfg["map"], env.spec.obs_dim,
                              env.spec.n_actions, env.spec.n_agents)
        try:
            learner.load_state_dict(resume_state["learner"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise DamagedFile(f"{old_ckpt}: does not fit a {algo} learner on {cfg['map']} "
                              f"({first_line(exc)})") from None
        gen.set_state(resume_state["generator"])
        s.update({k: int(v) for k, v in resume_state["counters"].items()})
        pending = {k: [float(a), float(b)] for k, (a, b) in resume_state.get("pending", {}).items()}
        for name, (steps, values) in resume_state["metrics"].items():  # the curve up to the checkpoint
            for step, value in zip(steps, values):
                logger.log(name, value, step)
        _copy_snapshots(Path(cfg["resume"]), run_dir)
        _run.info["resumed_from"] = str(cfg["resume"])
    if caps.pretrains and not s["pretrained"]:  # BC: pretrain, then report the policy before RL
        from dm2_repro.algos import bc

        bc_generator = torch.Generator().manual_seed(stream_seed(seed, algo, "bc"))  # the batch order
        for k, v in bc.pretrain(learner, demo, bc_generator).items():
            logger.log(k, v, 0)
        pre = evaluate(env, learner, hp.test_episodes, seed, 10**6, device, collect_fn)
        logger.log("pretrain_test_battle_won_mean", pre["test_battle_won_mean"], 0)
        s["pretrained"] = 1

    def save_checkpoint():
        if not ckpt_dir:
            return
        _save(dict(learner=learner.state_dict(), generator=gen.get_state(), counters=dict(s), metrics=logger.history,
                   pending=pending, meta=checkpoint_meta(cfg, env.spec)), ckpt_dir / "last.pt")
        _run.info["checkpoint"] = str(ckpt_dir / "last.pt")
        _run.info["peak_rss_mb"] = round(tracking.peak_rss_mb(), 1)   # this process's, so far (a resumed run: its own)

    def save_snapshot(step: int):
        if ckpt_dir:
            _save(dict(policy=learner.policy_state(), algo=cfg["algo"], map=cfg["map"], env_step=step, seed=seed,
                       hp=hp_dict(hp), meta=checkpoint_meta(cfg, env.spec)), snapshot_path(run_dir, step))

    bar = tqdm(total=hp.t_max, initial=s["env_steps"], unit="step", file=sys.stderr, mininterval=2.0,
               dynamic_ncols=True, desc=f"{cfg['algo']} {cfg['map']} s{seed}")
    last_win = float("nan")
    try:
        while True:
            if s["env_steps"] >= s["next_eval"]:
                res = evaluate(env, learner, hp.test_episodes, seed, s["evals"], device, collect_fn)
                for k, v in res.items():
                    logger.log(k, v, s["env_steps"])
                last_win = res["test_battle_won_mean"]
                s["evals"] += 1
                s["next_eval"] += hp.eval_every
            if s["env_steps"] >= hp.t_max:
                break
            t0 = time.time()
            learner.start_rollout(s["env_steps"])
            n_eps = learner.episodes_per_rollout
            batch = collect_fn(env, learner, n_eps, (streams["rollout"], s["rollouts"]), greedy=False, generator=gen,
                            device=device)
            s["rollouts"] += math.ceil(n_eps / env.n_envs)
            s["env_steps"] += batch.n_steps
            s["episodes"] += batch.n_episodes
            learner.after_rollout(batch)
            stats = learner.update(batch)
            sps = batch.n_steps / max(time.time() - t0, 1e-9)
            step = s["env_steps"]
            stats = dict(train_return_mean=batch.ep_return.mean().item(),
                         train_battle_won_mean=batch.battle_won.mean().item(), env_steps_per_s=sps, **stats)
            for k, v in stats.items():
                acc = pending.setdefault(k, [0.0, 0.0])
                acc[0], acc[1] = acc[0] + float(v), acc[1] + 1.0
            if step >= s["next_log"] or step >= hp.t_max:
                for k, (total, n) in pending.items():
                    logger.log(k, total / n, step)
                pending.clear()
                s["next_log"] = step + hp.log_every
            bar.update(batch.n_steps)
            bar.set_postfix(test_win=f"{last_win:.2f}", train_win=f"{batch.battle_won.mean().item():.2f}",
                            sps=f"{sps:.0f}")
            while step >= s["next_snapshot"]:
                save_snapshot(s["next_snapshot"])
                s["next_snapshot"] += hp.save_policy_every
            if step >= s["next_ckpt"]:
                save_checkpoint()
                s["next_ckpt"] = step + hp.checkpoint_every
        if caps.demo_source:  # the final policy of a possible demonstration source
            save_snapshot(s["env_steps"])
        save_checkpoint()
    finally:
        bar.close()
        logger.close()
        env.close()
    _run.info["env_steps"] = s["env_steps"]
    _run.info["peak_rss_mb"] = round(tracking.peak_rss_mb(), 1)
    return last_win


def _copy_snapshots(old_run: Path, run_dir: Path | None):
    """The policy snapshots of the run being resumed, into the new run dir (demo sources live on)."""
    if run_dir is None:
        return
    for step in snapshot_steps(old_run):
        target = snapshot_path(run_dir, step)
        if not target.exists():
            atomic_copy(snapshot_path(old_run, step), target)


class AtomicFileStorageObserver(FileStorageObserver):
    """Sacred's file observer, writing each json (run.json on every heartbeat, metrics.json, info.json,
    config.json) to a unique temporary name and renaming it: a kill mid-write never leaves a truncated
    file, and a reader never sees half of one. The content is Sacred's own."""

    def save_json(self, obj, filename):
        from sacred.serializer import flatten

        atomic_write_text(Path(self.dir) / filename, json.dumps(flatten(obj), sort_keys=True, indent=2))

    def save_cout(self):
        # whole, not appended from a cursor: the output filter rewrites a progress bar's redraws in
        # place, so what was already written changes (appending would splice two versions)
        atomic_write_text(Path(self.dir) / "cout.txt", self.cout)
        self.cout_write_cursor = len(self.cout)


def add_observers(results: str, mongo_url: str = ""):
    """The file observer under RESULTS/runs, and MongoDB when a URL is given (the real one: the
    config records it redacted), writing to the URL's database (default sacred)."""
    ex.observers[:] = [AtomicFileStorageObserver(str(Path(results) / "runs"))]
    if mongo_url:
        from sacred.observers import MongoObserver

        ex.observers.append(MongoObserver(url=mongo_url, db_name=tracking.mongo_database(mongo_url)))


def _check_device(device) -> None:
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device={device}: CUDA is not available here; valid devices: cpu")


def tracked_updates(updates: dict) -> tuple[dict, str]:
    """(the config updates as recorded, the real Mongo URL): the URL is mongo_url, else
    $DM2_MONGO_URL, and the record keeps only its redacted form (no password)."""
    url = tracking.mongo_url(updates.get("mongo_url", ""))
    return ({**updates, "mongo_url": tracking.redact_url(url)} if url else dict(updates)), url


def sacred_argv(argv: list[str], updates: dict) -> list[str]:
    """The command line Sacred reads: its own words and flags, then `with` and every checked value
    (old key names mapped, config files expanded, a resumed run's config, the password redacted)."""
    cut = argv.index("with") if "with" in argv else len(argv)
    words = list(argv[:cut]) + [w for w in argv[cut + 1:] if w.startswith("-")]
    return words + (["with", *(f"{k}={v!r}" for k, v in updates.items())] if updates else [])


def run(config_updates: dict, results_dir: str | None = None):
    """Programmatic entry point (tests, notebooks): one run, recorded under RESULTS/runs, RESULTS
    being `results_dir` if given, else the config's results= (old name results_dir=).
    A bad config raises InputError (a ValueError) before any run dir exists."""
    config_updates = check_train_config(dict(config_updates))
    _check_device(config_updates.get("device", "cpu"))
    if results_dir is not None:
        config_updates["results"] = str(not_a_file("results_dir", results_dir))
    updates, mongo_url = tracked_updates(config_updates)
    add_observers(updates.get("results", "results"), mongo_url)
    return ex.run(config_updates=updates)


def main(argv: list[str]):
    if help_requested(argv):
        print(train_help())
        return
    # every input checked before a run dir exists: one line and exit code 2 on a bad one
    resolved = _checked[1] if _checked is not None and _checked[0] == list(argv) else check_train_argv(argv)
    try:
        _check_device(resolved.get("device", "cpu"))
    except InputError as e:
        fail(e)
    updates, mongo_url = tracked_updates(resolved)
    add_observers(updates.get("results", "results"), mongo_url)
    ex.run_commandline(sacred_argv(argv, updates))


if __name__ == "__main__":
    main(sys.argv)
