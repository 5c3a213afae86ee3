"""StarCraft II backend: SMAC's `StarCraft2Env` behind the batched `BatchedEnv` interface.

N game instances run in N worker processes that talk to the parent over pipes (as PyMARL's
parallel runner does). The parent keeps the lockstep bookkeeping: once an environment's episode
has ended, the parent stops talking to its worker and repeats the final values with reward 0.

Nothing here imports pysc2 or SMAC at module level: the default (SMAX) path of the package must
work without them. `check_sc2_available()` says what is missing and how to install it.

Reference: docs/sc2.md.
"""
from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import pickle
import signal
import sys
import time
import traceback
import warnings
import weakref
from multiprocessing.connection import wait as _wait_ready
from pathlib import Path

import numpy as np

from .base import BatchedEnv, EnvSpec, Obs, Step
from .maps import PAPER_MAPS  # noqa: F401  (re-exported: the sc2 messages name them)

# SMAC settings of the paper's runs (PyMARL's sc2 config); smac_kwargs override them.
PAPER_SMAC_SETTINGS = dict(difficulty="7", reward_scale=True, reward_scale_rate=20, step_mul=8)

# SMAC only reports time-limit ends (info["episode_limit"]) when continuing_episode=True; the flag
# changes nothing else in StarCraft2Env. Without it a time-out looks like a game end, which would
# make the learner treat truncation as termination (no bootstrapping).
ADAPTER_SMAC_SETTINGS = dict(continuing_episode=True)

PYSC2_INSTALL = "pip install pysc2"
SMAC_INSTALL = 'pip install "smac @ git+https://github.com/oxwhirl/smac.git@d6aab33f76abc3849c50463a8592a84f59a5ef84"'
SC2_BINARY_URL = "https://github.com/Blizzard/s2client-proto#downloads"
SMAC_MAPS_URL = "https://github.com/oxwhirl/smac/releases/download/v0.1-beta1/SMAC_Maps.zip"

_CLOSE_GRACE_S = 20.0  # closing a game (pysc2 quits SC2, then waits for it) can take seconds
_TERM_GRACE_S = 5.0


class SC2WorkerError(RuntimeError):
    """A worker (one game instance) failed; all workers have been shut down."""


# --------------------------------------------------------------------------------------------
# Availability check
# --------------------------------------------------------------------------------------------


def check_sc2_available(map_name: str | None = None) -> None:
    """Raise RuntimeError listing everything the StarCraft II backend is missing.

    Checks pysc2, SMAC (the StarCraft Multi-Agent Challenge, not PyPI's SMAC3), SC2PATH, the
    game binary under it and the SMAC maps (and `<map_name>.SC2Map` if a map is given).
    A map name SMAC does not know raises ValueError.
    """
    problems: list[str] = []

    pysc2_ok = _importable("pysc2")
    if not pysc2_ok:
        problems.append(f"pysc2 is not installed: {PYSC2_INSTALL}")

    smac_ok = False
    try:
        smac = importlib.import_module("smac")
    except ImportError:
        problems.append(f"SMAC (StarCraft Multi-Agent Challenge) is not installed: {SMAC_INSTALL}")
    else:
        try:
            importlib.import_module("smac.env")
            smac_ok = True
        except ImportError as e:
            if e.name == "smac.env":
                where = getattr(smac, "__file__", None) or "unknown location"
                version = getattr(smac, "__version__", "unknown version")
                problems.append(
                    f"the installed package `smac` ({version}, {where}) has no `smac.env`: it is "
                    "SMAC3, the hyperparameter optimiser that PyPI publishes under the same name, "
                    "not the StarCraft Multi-Agent Challenge. Replace it: pip uninstall smac && "
                    f"{SMAC_INSTALL}"
                )
            elif not (e.name or "").startswith("pysc2"):  # a missing pysc2 is reported above
                problems.append(f"SMAC is installed but `import smac.env` fails: {e!r}")

    unknown_map = smac_ok and map_name is not None and not _smac_knows_map(map_name)

    sc2path = os.environ.get("SC2PATH")
    if not sc2path:
        problems.append(
            "SC2PATH is not set: install the StarCraft II binary (Linux builds: "
            f"{SC2_BINARY_URL}) and `export SC2PATH=/path/to/StarCraftII`"
        )
    elif not Path(sc2path).is_dir():
        problems.append(f"SC2PATH={sc2path} is not a directory: point it at the StarCraft II install")
    else:
        root = Path(sc2path)
        versions = root / "Versions"
        if not versions.is_dir() or not any(versions.iterdir()):
            problems.append(
                f"no StarCraft II binary under {versions} (expected Versions/Base*/): install the "
                f"game ({SC2_BINARY_URL}) into SC2PATH"
            )
        maps_dir = root / "Maps" / "SMAC_Maps"
        if not maps_dir.is_dir():
            problems.append(
                f"SMAC maps are missing: {maps_dir} does not exist; download {SMAC_MAPS_URL} and "
                f"unzip it into {root / 'Maps'}"
            )
        elif map_name is not None and not unknown_map and not (maps_dir / f"{map_name}.SC2Map").is_file():
            problems.append(
                f"map file {maps_dir / (map_name + '.SC2Map')} is missing; the SMAC maps are in "
                f"{SMAC_MAPS_URL}"
            )

    if problems:
        raise RuntimeError(
            "The StarCraft II backend is not available:\n  - " + "\n  - ".join(problems)
            + '\nInstall the Python parts with: pip install -e ".[sc2]" (see README, "Running on real StarCraft II").'
        )
    if unknown_map:
        raise ValueError(_unknown_map_message(map_name))


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False


def _smac_knows_map(map_name: str) -> bool:
    try:
        from smac.env.starcraft2.maps import get_map_params
    except ImportError:  # registry moved in some SMAC version: let SMAC itself complain later
        return True
    try:
        get_map_params(map_name)
        return True
    except KeyError:
        return False


def _unknown_map_message(map_name: str) -> str:
    return (
        f"SMAC does not know the map {map_name!r}. The paper's maps are {', '.join(PAPER_MAPS)}; "
        "SMAC's full list is in smac/env/starcraft2/maps/smac_maps.py."
    )


# --------------------------------------------------------------------------------------------
# Worker process
# --------------------------------------------------------------------------------------------


def make_smac_env(map_name: str, seed: int, episode_limit: int | None = None, **kwargs):
    """Default env_factory: SMAC's StarCraft2Env (imported here, inside the worker)."""
    from smac.env import StarCraft2Env

    env = StarCraft2Env(map_name=map_name, seed=seed, **kwargs)
    if episode_limit is not None:
        # StarCraft2Env takes its limit from the map registry, not from a constructor argument;
        # step() and get_env_info() read this attribute.
        env.episode_limit = int(episode_limit)
    return env


def _observe(env):
    obs = np.asarray(env.get_obs(), dtype=np.float32)
    state = np.asarray(env.get_state(), dtype=np.float32).reshape(-1)
    avail = np.asarray(env.get_avail_actions()).astype(bool)
    return obs, state, avail


def _worker(conn, env_factory, map_name: str, seed: int, kwargs: dict) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when workers stop. SIG_IGN is
    # inherited across exec, so the game process started from here ignores it as well.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # terminate() (SIGTERM) must still close the game, so turn it into SystemExit -> finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    env = None
    phase = "create"
    try:
        env = env_factory(map_name, seed, **kwargs)
        conn.send(("ok", dict(env.get_env_info())))
        last = None
        while True:
            cmd, data = conn.recv()
            phase = cmd
            if cmd == "reset":
                env.reset()  # older SMAC returns nothing useful: read obs/state below
                last = _observe(env)
                conn.send(("ok", last))
            elif cmd == "step":
                reward, ended, info = env.step(data)
                info = dict(info or {})
                if ended and "battle_won" not in info:
                    # SMAC returns (0, True, {}) after the game crashed and was relaunched; the
                    # relaunched game has no units of this episode, so keep the last observation.
                    info["crashed"] = True
                else:
                    last = _observe(env)
                conn.send(("ok", (float(reward), bool(ended), info, last)))
            elif cmd == "close":
                break
            else:
                raise ValueError(f"unknown command {cmd!r}")
    except (EOFError, BrokenPipeError, SystemExit):
        pass  # parent gone or terminate(): just close the game below
    except BaseException as e:
        try:
            conn.send(("error", (phase, type(e).__name__, str(e), traceback.format_exc())))
        except (OSError, ValueError):
            pass
    finally:
        if env is not None:
            try:
                env.close()  # stops the StarCraft II process
            except Exception:
                pass
        conn.close()


def _shutdown_workers(procs: list, conns: list) -> None:
    """Ask every worker to close its game, then escalate. Module-level for weakref.finalize."""
    for conn in conns:
        try:
            conn.send(("close", None))
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + _CLOSE_GRACE_S
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for escalate in ("terminate", "kill"):
        alive = [p for p in procs if p.is_alive()]
        if not alive:
            break
        for p in alive:
            getattr(p, escalate)()
        deadline = time.monotonic() + _TERM_GRACE_S
        for p in alive:
            p.join(max(0.0, deadline - time.monotonic()))
    for conn in conns:
        conn.close()
    procs.clear()
    conns.clear()


# --------------------------------------------------------------------------------------------
# The batched environment
# --------------------------------------------------------------------------------------------


class SC2Env(BatchedEnv):
    """N StarCraft II games (SMAC) in worker processes, collected in lockstep.

    Worker i plays with game seed `seed + i`. StarCraft II takes its random seed when the game is
    launched, so `reset(seed)` cannot re-seed it (relaunching costs seconds per game); the game is
    not bit-reproducible anyway. `env_factory(map_name, seed, **kwargs)` must be picklable
    (workers are spawned); the default builds SMAC's StarCraft2Env.
    """

    def __init__(
        self,
        map_name: str,
        n_envs: int,
        episode_limit: int | None = None,
        seed: int = 0,
        env_factory=None,
        **smac_kwargs,
    ):
        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1, got {n_envs}")
        if env_factory is None:
            check_sc2_available(map_name)  # fail at once, before starting any process
            env_factory = make_smac_env
        self.map_name = map_name
        self.n_envs = n_envs
        kwargs = {**PAPER_SMAC_SETTINGS, **ADAPTER_SMAC_SETTINGS, **smac_kwargs}
        if episode_limit is not None:
            kwargs["episode_limit"] = int(episode_limit)
        self.smac_kwargs = kwargs
        self._continuing = bool(kwargs.get("continuing_episode", False))

        # spawn, not fork: the parent may run JAX/torch threads, and forking a threaded process
        # can deadlock; spawned workers also inherit no other worker's pipe ends.
        ctx = mp.get_context("spawn")
        self._procs: list = []
        self._conns: list = []
        self._finalizer = weakref.finalize(self, _shutdown_workers, self._procs, self._conns)
        try:
            for i in range(n_envs):
                parent_end, child_end = ctx.Pipe()
                p = ctx.Process(
                    target=_worker,
                    args=(child_end, env_factory, map_name, seed + i, kwargs),
                    name=f"sc2-worker-{i}",
                    daemon=True,  # last line of defence; close() is the normal path
                )
                try:
                    p.start()
                except (pickle.PicklingError, AttributeError, TypeError) as e:
                    raise TypeError("env_factory must be picklable (a module-level function or "
                                    f"class): workers are spawned processes ({e})") from e
                child_end.close()  # so the parent sees EOF if the worker dies
                self._procs.append(p)
                self._conns.append(parent_end)
            infos = [self._recv(i, "create") for i in range(n_envs)]
        except BaseException:
            self.close()
            raise

        self.env_info = infos[0]  # SMAC's raw get_env_info() of worker 0
        self.spec = EnvSpec(
            map_name=map_name,
            n_agents=int(self.env_info["n_agents"]),
            n_actions=int(self.env_info["n_actions"]),
            obs_dim=int(np.prod(self.env_info["obs_shape"])),
            state_dim=int(np.prod(self.env_info["state_shape"])),
            episode_limit=int(self.env_info["episode_limit"]),
        )
        self._reset_called = False

    # -- pipe helpers --------------------------------------------------------------------------

    def _recv(self, i: int, what: str):
        """The reply of worker i; raise (after shutting every worker down) if it failed."""
        conn, proc = self._conns[i], self._procs[i]
        if conn not in _wait_ready([conn, proc.sentinel]):
            raise self._fail(SC2WorkerError(
                f"SC2 worker {i} (map {self.map_name}) died during {what} "
                f"(exit code {proc.exitcode})"))
        try:
            status, payload = conn.recv()
        except EOFError:
            raise self._fail(SC2WorkerError(
                f"SC2 worker {i} (map {self.map_name}) closed its pipe during {what}")) from None
        if status == "ok":
            return payload
        phase, exc_type, message, tb = payload
        if phase == "create" and exc_type == "KeyError":  # SMAC's map registry lookup
            raise self._fail(ValueError(
                _unknown_map_message(self.map_name) + f"\n(SMAC raised KeyError: {message})"))
        raise self._fail(SC2WorkerError(
            f"SC2 worker {i} (map {self.map_name}) failed during {phase}: {exc_type}: {message}\n"
            f"--- worker traceback ---\n{tb}"))

    def _fail(self, exc: BaseException) -> BaseException:
        self.close()
        return exc

    def _send(self, i: int, cmd: str, data=None) -> None:
        try:
            self._conns[i].send((cmd, data))
        except (OSError, ValueError):
            # the worker is gone: its error (if it sent one) is waiting in the pipe
            self._recv(i, cmd)
            raise self._fail(SC2WorkerError(f"SC2 worker {i} (map {self.map_name}) is gone"))

    def _check_open(self) -> None:
        if not self._finalizer.alive:
            raise RuntimeError("SC2Env is closed")

    # -- BatchedEnv ------------------------------------------------------------------------------

    def reset(self, seed: int = 0) -> Obs:
        self._check_open()
        try:
            for i in range(self.n_envs):
                self._send(i, "reset")
            replies = [self._recv(i, "reset") for i in range(self.n_envs)]
        except BaseException:  # includes KeyboardInterrupt: never leave games running
            self.close()
            raise
        self._obs = np.stack([r[0] for r in replies])
        self._state = np.stack([r[1] for r in replies])
        self._avail = np.stack([r[2] for r in replies])
        n = self.n_envs
        self._done = np.zeros(n, bool)
        self._terminated = np.zeros(n, bool)
        self._won = np.zeros(n, bool)
        self._return = np.zeros(n, np.float32)
        self._length = np.zeros(n, np.int32)
        self._reset_called = True
        return Obs(self._obs.copy(), self._state.copy(), self._avail.copy())

    def step(self, actions: np.ndarray) -> Step:
        self._check_open()
        if not self._reset_called:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != (self.n_envs, self.spec.n_agents):
            raise ValueError(f"actions must have shape {(self.n_envs, self.spec.n_agents)}, "
                             f"got {actions.shape}")
        active = np.flatnonzero(~self._done)  # ended envs ignore their actions
        reward = np.zeros(self.n_envs, np.float32)
        try:
            for i in active:
                self._send(i, "step", [int(a) for a in actions[i]])
            for i in active:
                r, ended, info, (obs, state, avail) = self._recv(i, "step")
                reward[i] = r
                self._obs[i], self._state[i], self._avail[i] = obs, state, avail
                self._return[i] += r
                self._length[i] += 1
                if ended:
                    self._done[i] = True
                    self._won[i] = bool(info.get("battle_won", False))
                    self._terminated[i] = self._ended_by_game(info, self._length[i], i)
        except BaseException:
            self.close()
            raise
        return Step(
            obs=self._obs.copy(), state=self._state.copy(), avail=self._avail.copy(),
            reward=reward, done=self._done.copy(), terminated=self._terminated.copy(),
            battle_won=self._won.copy(), ep_return=self._return.copy(),
            ep_length=self._length.copy(),
        )

    def _ended_by_game(self, info: dict, length: int, i: int) -> bool:
        """True if the battle ended (win, loss, draw); False for time-limit ends and crashes."""
        if info.get("crashed"):
            warnings.warn(f"SC2 game {i} crashed and was relaunched by SMAC; its episode is "
                          "reported as truncated (terminated=False, battle_won=False)")
            return False
        if info.get("episode_limit", False):
            return False
        if not self._continuing and not info.get("battle_won") and length >= self.spec.episode_limit:
            # continuing_episode=False was requested, so SMAC hides time-outs: infer them.
            return False
        return True

    def close(self) -> None:
        self._finalizer()  # runs _shutdown_workers once; later calls do nothing
