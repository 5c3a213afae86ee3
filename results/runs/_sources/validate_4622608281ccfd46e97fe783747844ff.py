"""Input checks of every command line, run before any heavy import (torch, JAX, Sacred) and before
any run directory exists; and safe file writing.

A bad input gives one line, naming the bad value and what would be valid, and a non-zero exit
(2), never a traceback:

    python -m dm2_repro.train with hp.n_envs=0
    error: hp.n_envs=0: must be an integer >= 1

What is checked for `python -m dm2_repro.train with KEY=VALUE ...` (`check_train_argv`, called at
the top of dm2_repro/train.py when it runs as a program, and by `train.run` / `train.main`):
- names: every KEY is a config key of the experiment; algo, map, scale, backend, reward and device
  are known values; every hp.KEY is a field of dm2_repro.config.HP;
- types and ranges: seed an integer >= 0, threads >= 1, tensorboard true/false; every hp value
  of its field's type and within its range (HP_RULES: counts and budgets >= 1, probabilities in
  [0, 1], rates > 0, all finite), on the merged values (paper -> preset -> overrides);
- files: demo= exists, has its .json, its sha256 matches, and was made for this map, backend and
  agent count, with enough episodes for hp.demo_episodes; resume= is a run dir with a readable
  config.json and a checkpoint whose zip and pickle are intact (read without torch, see
  `peek_torch_file`) and whose recorded algo/map are the run's; results is not a file;
- tracking: mongo_url (or $DM2_MONGO_URL) is a MongoDB URL and pymongo is installed; tensorboard=True
  and wandb_project= need their packages.
`results_dir=` is the old name of `results=` (TRAIN_ALIASES); `python -m dm2_repro.train --help` prints
`train_help()` (every key, its meaning and default) without loading torch, JAX or Sacred.

The other CLIs (run, figure, claims, demos, bench) parse with `Parser` (argparse, but an error is
one line) and check their values with the helpers here (`at_least`, `check_hp_pairs`,
`existing_dir`).

The helpers every CLI and writer shares (one-line errors, `Parser`, `at_least`, atomic writes) are in
dm2_repro/cli_io.py, which imports nothing of the package; they are re-exported here.

Reference: docs/troubleshooting.md.
"""
from __future__ import annotations

import ast
import json
import math
import os
from dataclasses import fields
from pathlib import Path

from dm2_repro.algos import DEFAULT_GAIL_REWARD, LEGACY_GAIL_REWARD   # constants only: algos imports nothing back
from dm2_repro.cli_io import (DEVICE_RE, EXIT_BAD_INPUT, DamagedFile, HelpFormatter, InputError,  # noqa: F401  (re-exported)
                     MissingInput, Parser, _is_int, _is_number, at_least, atomic_copy, atomic_write, atomic_write_text,
                     existing_dir, fail, first_line, not_a_file, relative_to_results, resolve_in_results,
                     sha256_file)
from dm2_repro.training.snapshots import (CHECKPOINT_FORMAT, check_checkpoint_meta, check_torch_file,  # noqa: F401  (re-exported)
                        peek_torch_file)

REWARDS = ("smac", "smax")
JAX_BACKENDS = ("smax", "jaxmarl")   # the backends whose step can be traced into one program (rollout=jax)
# what makes a run that run: fixed on resume
RUN_KEYS = ("algo", "map", "seed", "scale", "backend", "reward", "demo", "tag", "hp", "rollout", "gail_reward")
# the defaults of dm2_repro.train's Sacred config (a test keeps them equal)
TRAIN_DEFAULTS = dict(algo="ippo", map="3s_vs_3z", seed=1, scale="cpu", backend="smax", reward="smac", demo="",
                      tag="", hp={}, device="cpu", resume="", results="results", tensorboard=False,
                      mongo_url="", wandb_project="", threads=1, rollout="python", gail_reward=DEFAULT_GAIL_REWARD)
# the value a run recorded before a key existed used, where it is not the key's default
PRE_KEY_VALUES = dict(gail_reward=LEGACY_GAIL_REWARD)
# what each train key means (`python -m dm2_repro.train --help`; a test keeps the keys those of TRAIN_DEFAULTS)
TRAIN_HELP = dict(
    algo="learner (dm2_repro.algos.ALGOS)",
    map="SMAC map name (dm2_repro.envs.maps.MAPS)",
    seed="run seed: network init, training and test episodes derive from it",
    scale="hyperparameter preset: smoke | cpu | paper",
    backend="smax (SMAX in JAX, CPU) | sc2 (real StarCraft II)",
    reward="smac: SMAC's reward (also on SMAX) | smax: SMAX's own x 10",
    demo="demonstration .npz, for the algos that learn from one (python -m dm2_repro.demos collect)",
    tag="free label, used by experiment definitions to tell runs apart",
    hp="overrides of dm2_repro.config.HP fields, given as hp.FIELD=VALUE",
    device="cpu | cuda | cuda:<index>",
    resume="run dir to continue from its last checkpoint (its config is kept)",
    results="results directory: the run is written to RESULTS/runs/<id>/ (old name: results_dir)",
    tensorboard="also write TensorBoard event files to RUN/tb/<algo>/<map>/seed<seed>/",
    mongo_url="also record to MongoDB (Omniboard), e.g. mongodb://localhost:27017/dm2 (database from the URL, "
              "default sacred); or set $DM2_MONGO_URL; the password is never recorded",
    wandb_project="also log to this Weights & Biases project (pip install 'dm2_repro[wandb]')",
    threads="torch + XLA CPU threads of this run (1: safe when runs share the machine)",
    rollout="python: the env stepped from Python (default; every committed run) | jax: whole episodes in one "
            "jitted JAX program, SMAX and JaxMARL tasks only (same episodes, other action-sampling stream)",
    gail_reward="form of the GAIL reward (algos with one: dm2, gail_only, sil, ...): absorbing (default: log-odds "
                "+ absorbing state after a game's end) | paper (Algorithm 1: softplus of the log-odds) | logit "
                "(log-odds on real steps only; every run before 2026-12-07): docs/dm2.md",
)
TRAIN_ALIASES = {"results_dir": "results"}   # old name -> name: older command lines and configs stay valid
# written into config.json by the run (derived from the keys above), never set: dropped from a config
# given back (`with RUN/config.json`, train.run(config)), an error as a command-line word
RECORDED_KEYS = ("hp_resolved",)
HELP_WORDS = ("-h", "--help", "help")


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

def check_maps(maps, option: str = "--maps") -> None:
    """Every map of a --maps filter is a known map."""
    from dm2_repro.envs.maps import MAPS

    unknown = [m for m in maps or () if m not in MAPS]
    if unknown:
        raise InputError(f"{option} {' '.join(unknown)}: unknown map(s); valid maps: {', '.join(MAPS)}")


# ---------------------------------------------------------------------------------------------
# Hyperparameters
# ---------------------------------------------------------------------------------------------

# field -> (low, high, low_inclusive): the valid range of every dm2_repro.config.HP field
_COUNT, _COUNT0 = (1, None, True), (0, None, True)
_POSITIVE, _NONNEG, _PROB = (0.0, None, False), (0.0, None, True), (0.0, 1.0, True)
HP_RULES: dict[str, tuple] = dict(
    n_envs=_COUNT, t_max=_COUNT, eval_every=_COUNT, log_every=_COUNT0, test_episodes=_COUNT,
    save_policy_every=_COUNT, checkpoint_every=_COUNT, buffer_episodes=_COUNT, ppo_epochs=_COUNT,
    clip=_NONNEG, hidden=_COUNT, lr=_POSITIVE, adam_eps=_POSITIVE, gamma=_PROB, gae_lambda=_PROB,
    entropy_coef=_NONNEG, value_loss_coef=_NONNEG, huber_delta=_POSITIVE, max_grad_norm=_POSITIVE,
    gail_coef=_NONNEG, gail_hidden=_COUNT, gail_lr=_POSITIVE, gail_epochs=_COUNT, gail_batch_episodes=_COUNT,
    gail_buffer_episodes=_COUNT, demo_episodes=_COUNT, grad_penalty=_NONNEG, sil_store_episodes=_COUNT,
    bc_epochs=_COUNT, bc_batch_episodes=_COUNT,
    qmix_lr=_POSITIVE, qmix_optim_alpha=_PROB, qmix_optim_eps=_POSITIVE, qmix_batch_episodes=_COUNT,
    qmix_buffer_episodes=_COUNT, epsilon_start=_PROB, epsilon_finish=_PROB, epsilon_anneal_steps=_COUNT0,
    target_update_episodes=_COUNT, mixing_embed_dim=_COUNT, hypernet_embed=_COUNT,
    rmappo_ppo_epochs=_COUNT, rmappo_clip=_NONNEG, rmappo_value_loss_coef=_NONNEG,
    rmappo_buffer_episodes=_COUNT,
)


def _range_text(kind: str, rule: tuple) -> str:
    low, high, inclusive = rule
    if high is not None:
        return f"{kind} in [{low:g}, {high:g}]"
    return f"{kind} {'>=' if inclusive else '>'} {low:g}"


def hp_value_problem(key: str, value, field_type: str) -> str | None:
    """Why `value` is not valid for HP field `key` (None if it is)."""
    rule = HP_RULES[key]
    if field_type == "int":
        if _is_number(value) and not _is_int(value) and float(value).is_integer():
            value = int(value)
        if not _is_int(value):
            return f"must be {_range_text('an integer', rule)}"
        kind = "an integer"
    else:
        if not _is_number(value) or not math.isfinite(value):
            return f"must be {_range_text('a finite number', rule)}"
        kind = "a number"
    low, high, inclusive = rule
    if value < low or (value == low and not inclusive) or (high is not None and value > high):
        return f"must be {_range_text(kind, rule)}"
    return None


def hp_fields() -> dict[str, str]:
    from dm2_repro.config import HP

    return {f.name: f.type for f in fields(HP)}


def check_hp(overrides, prefix: str = "hp.") -> dict:
    """Names, types and ranges of hp overrides; returns them (an int given for a float is fine)."""
    if overrides in (None, ""):
        return {}
    if not isinstance(overrides, dict):
        raise InputError(f"hp={overrides!r}: must be overrides of named fields, e.g. {prefix}lr=0.001")
    types = hp_fields()
    unknown = sorted(set(overrides) - set(types))
    if unknown:
        raise InputError(f"unknown hp key(s) {unknown}; valid keys: {', '.join(sorted(types))}")
    for key, value in overrides.items():
        problem = hp_value_problem(key, value, types[key])
        if problem:
            raise InputError(f"{prefix}{key}={value!r}: {problem}")
    return dict(overrides)


def check_merged_hp(algo: str, map_name: str, scale: str, overrides: dict):
    """The run's HP (paper -> preset -> overrides), every field in range."""
    from dm2_repro.config import make_hp

    try:
        hp = make_hp(algo, map_name, scale, overrides)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    types = hp_fields()
    for key in types:
        problem = hp_value_problem(key, getattr(hp, key), types[key])
        if problem:
            raise InputError(f"hp.{key}={getattr(hp, key)!r} (from scale={scale}): {problem}")
    return hp


def check_hp_pairs(pairs, option: str = "--hp"):
    """The KEY=VALUE words of `run`/`figure` --hp, parsed (sweeps.plan.parse_hp) and checked."""
    from dm2_repro.sweeps.plan import parse_hp

    import yaml

    values = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        if not sep:
            raise InputError(f"{option} {pair!r}: not KEY=VALUE, e.g. {option} n_envs=8")
        for cast in (int, float, yaml.safe_load):   # as sweeps.plan.parse_hp reads it
            try:
                values[key] = cast(text)
                break
            except (ValueError, yaml.YAMLError):
                continue
        else:
            values[key] = text
    check_hp(values, prefix=f"{option} ")
    try:
        return parse_hp(pairs)
    except ValueError as exc:
        raise InputError(f"{option}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Demonstration files
# ---------------------------------------------------------------------------------------------

def check_demo(demo, algo: str, map_name: str, backend: str, hp=None) -> None:
    """demo=: required by the demonstration learners; present, complete (json + sha256), made for
    this map, backend and agent count, with at least hp.demo_episodes episodes."""
    from dm2_repro.algos import capabilities
    from dm2_repro.demos import DemoError, verify_demo_metadata
    from dm2_repro.envs.maps import MAPS

    if not demo:
        if capabilities(algo).needs_demo:
            raise InputError(f"algo={algo} learns from demonstrations: pass demo=<path to .npz> "
                             "(made by python -m dm2_repro.demos collect)")
        return
    if not isinstance(demo, str):
        raise InputError(f"demo={demo!r}: must be the path of a .npz demonstration file")
    path = Path(demo)
    if path.suffix != ".npz":
        raise InputError(f"demo={demo}: not a demonstration file (expected NAME.npz with NAME.json next to it)")
    if not path.exists():
        raise MissingInput(f"demo={demo}: file not found (make it with python -m dm2_repro.demos collect)")
    try:
        meta, _ = verify_demo_metadata(path)
    except DemoError as exc:
        raise DamagedFile(f"demo={demo}: {exc}") from None
    n_agents = len(MAPS[map_name].allies)
    wrong = [f"{k} {have!r} in the file, {want!r} for this run"
             for k, have, want in (("map", meta.get("map"), map_name), ("n_agents", meta.get("n_agents"), n_agents),
                                   ("backend", meta.get("backend", backend), backend))
             if have != want]
    if wrong:
        raise InputError(f"demo={demo}: made for another environment: {'; '.join(wrong)}")
    if hp is not None and capabilities(algo).needs_demo and int(meta["n_episodes"]) < hp.demo_episodes:
        raise InputError(f"demo={demo}: has {meta['n_episodes']} episodes per agent, hp.demo_episodes="
                         f"{hp.demo_episodes} asks for more: collect more or lower hp.demo_episodes")


# ---------------------------------------------------------------------------------------------
# dm2_repro.train
# ---------------------------------------------------------------------------------------------

def _sacred_value(text: str):
    """A command-line value as Sacred reads it: a Python literal, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _config_file(path: Path) -> dict:
    import yaml

    try:
        text = path.read_text()
        loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise DamagedFile(f"config file {path} cannot be read ({first_line(exc)})") from None
    if not isinstance(loaded, dict):
        raise InputError(f"config file {path}: must hold KEY: VALUE entries")
    return loaded


def help_requested(argv: list[str]) -> bool:
    """`train --help`, `train -h` or `train help` (before any `with`)."""
    words = argv[1:argv.index("with")] if "with" in argv else argv[1:]
    return any(w in HELP_WORDS for w in words)


def train_help() -> str:
    """Every train config key with its meaning and default."""
    width = max(map(len, TRAIN_HELP))
    lines = ["usage: python -m dm2_repro.train [print_config] with KEY=VALUE ... [hp.FIELD=VALUE ...]",
             "       python -m dm2_repro.train with resume=RESULTS/runs/<id>", "",
             "One training run, recorded as a Sacred run in RESULTS/runs/<id>/ (docs/tracking.md).", "",
             "keys:"]
    for key, meaning in TRAIN_HELP.items():
        lines.append(f"  {key:<{width}}  {meaning} (default: {TRAIN_DEFAULTS[key]!r})")
    lines += ["", "`print_config with ...` shows a run's config, its resolved hyperparameters (hp_resolved) "
              "included, without running it."]
    return "\n".join(lines)


def normalise_train_keys(updates: dict) -> dict:
    """Old key names mapped to their names (results_dir -> results; both, differing, is an error),
    and the recorded keys of a run's config.json dropped: the run makes them anew."""
    updates = {k: v for k, v in updates.items() if k not in RECORDED_KEYS}
    for old, new in TRAIN_ALIASES.items():
        if old in updates:
            value = updates.pop(old)
            if new in updates and updates[new] != value:
                raise InputError(f"{old}={value!r} and {new}={updates[new]!r} given together ({old} is the old "
                                 f"name of {new}): give {new}= only")
            updates[new] = value
    return updates


def train_words(argv: list[str]) -> dict:
    """The `with KEY=VALUE ...` words of a train command line, as Sacred will read them (hp.X ->
    hp[X]), old key names mapped (TRAIN_ALIASES); a word that is neither KEY=VALUE nor a config
    file is an error."""
    if "with" not in argv:
        return {}
    updates: dict = {}
    for word in argv[argv.index("with") + 1:]:
        if word == "" or word.startswith("-"):
            continue
        path, sep, value = word.partition("=")
        if not sep:
            if Path(word).suffix in (".json", ".yaml", ".yml") and Path(word).is_file():
                for key, value in _config_file(Path(word)).items():   # a Sacred config file, in order
                    if key == "hp" and isinstance(value, dict) and isinstance(updates.get("hp"), dict):
                        updates["hp"].update(value)
                    else:
                        updates[key] = value
                continue
            raise InputError(f"{word!r} after 'with' is not KEY=VALUE (e.g. algo=dm2); valid keys: "
                             f"{', '.join(TRAIN_DEFAULTS)}, hp.<field>")
        path = path.strip()
        parts = path.split(".")
        if parts[0] in RECORDED_KEYS:
            raise InputError(f"{path}= is recorded by the run (the resolved hp), not set: give hp.FIELD=VALUE")
        if parts[0] != "hp" and len(parts) > 1:
            raise InputError(f"unknown config key {path!r}; valid keys: {', '.join(TRAIN_DEFAULTS)}, hp.<field>")
        if parts[0] == "hp" and len(parts) > 1:
            key = ".".join(parts[1:])
            hp = updates.setdefault("hp", {})
            if not isinstance(hp, dict):
                raise InputError(f"hp={hp!r} and {path}=... given together")
            hp[key] = _sacred_value(value.strip())
        else:
            updates[path] = _sacred_value(value.strip())
    return normalise_train_keys(updates)


def _choice(key: str, value, valid) -> None:
    if not isinstance(value, str) or value not in valid:
        raise InputError(f"unknown {key} {value!r}; valid: {', '.join(valid)}")


def check_train_keys(updates: dict) -> None:
    """Names and types of the given config values (before a resume fills in the run's)."""
    from dm2_repro.algos import ALGOS, GAIL_REWARDS
    from dm2_repro.config import ROLLOUTS, SCALES
    from dm2_repro.envs import BACKENDS
    from dm2_repro.envs.maps import MAPS

    unknown = sorted(set(updates) - set(TRAIN_DEFAULTS))
    if unknown:
        raise InputError(f"unknown config key(s) {unknown}; valid keys: {', '.join(TRAIN_DEFAULTS)}")
    for key, valid in (("algo", ALGOS), ("map", MAPS), ("scale", SCALES), ("backend", BACKENDS),
                       ("reward", REWARDS), ("rollout", ROLLOUTS), ("gail_reward", GAIL_REWARDS)):
        if key in updates:
            _choice(key, updates[key], list(valid))
    for key in ("seed", "threads"):
        if key in updates:
            low = 0 if key == "seed" else 1
            if not _is_int(updates[key]) or updates[key] < low:
                raise InputError(f"{key}={updates[key]!r}: must be an integer >= {low}")
    for key in ("demo", "tag", "resume", "results", "mongo_url", "wandb_project"):
        if key in updates and not isinstance(updates[key], str):
            raise InputError(f"{key}={updates[key]!r}: must be a string (quote it: {key}='\"...\"')")
    if "device" in updates and not (isinstance(updates["device"], str) and DEVICE_RE.match(updates["device"])):
        raise InputError(f"device={updates['device']!r}: valid devices: cpu, cuda, cuda:<index>")
    if "tensorboard" in updates and not isinstance(updates["tensorboard"], bool):
        raise InputError(f"tensorboard={updates['tensorboard']!r}: must be True or False")
    check_tracking(updates)
    if "results" in updates:
        not_a_file("results=", updates["results"])
    check_hp(updates.get("hp"))


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def check_tracking(updates: dict, environ=os.environ) -> None:
    """mongo_url (else $DM2_MONGO_URL) a MongoDB URL, and the packages of the dashboards asked for."""
    from dm2_repro.training.tracking import MONGO_ENV, is_mongo_url, redact_url

    url = updates.get("mongo_url") or environ.get(MONGO_ENV, "")
    name = "mongo_url" if updates.get("mongo_url") else f"${MONGO_ENV}"
    if url and not is_mongo_url(url):
        raise InputError(f"{name}={redact_url(url)!r}: must be a MongoDB URL, e.g. mongodb://localhost:27017/dm2")
    needs = ((name, url, "pymongo", "mongo"), ("tensorboard", updates.get("tensorboard"), "tensorboard", "tensorboard"),
             ("wandb_project", updates.get("wandb_project"), "wandb", "wandb"))
    for key, asked, module, extra in needs:
        if asked and not _installed(module):
            raise InputError(f"{key}: needs {module}, which is not installed (pip install 'dm2_repro[{extra}]')")


def _read_run_config(run_dir: Path) -> dict:
    cfg_path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise MissingInput(f"resume={run_dir}: no such run directory")
    if not cfg_path.is_file():
        raise MissingInput(f"resume={run_dir}: no run there ({cfg_path} does not exist)")
    try:
        old = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise DamagedFile(f"resume={run_dir}: {cfg_path} cannot be read ({first_line(exc)})") from None
    if not isinstance(old, dict):
        raise DamagedFile(f"resume={run_dir}: {cfg_path} is not a run config")
    return old


def resolve_resume(updates: dict) -> dict:
    """A resumed run is the same run: its RUN_KEYS come from the old run's config.json, before Sacred
    records the new run's config. A key given together with `resume=` must equal the old run's."""
    if not updates.get("resume"):
        return updates
    old_dir = Path(updates["resume"])
    old = {**PRE_KEY_VALUES, **_read_run_config(old_dir)}   # a run from before a key: what it used
    given_hp = dict(updates.get("hp") or {})
    for k in RUN_KEYS:
        if k == "hp":
            clash = {h: v for h, v in given_hp.items() if old.get("hp", {}).get(h) != v}
            if clash:
                raise InputError(f"resume={old_dir}: hp {clash} differs from the run's hp {old.get('hp', {})}; "
                                 "a resumed run keeps its config")
        elif k in updates and updates[k] != old.get(k, TRAIN_DEFAULTS[k]):  # runs from before a key: its default
            raise InputError(f"resume={old_dir}: {k}={updates[k]!r} differs from the run's "
                             f"{k}={old.get(k, TRAIN_DEFAULTS[k])!r}; a resumed run keeps its config (leave it out)")
    return {**updates, **{k: old[k] for k in RUN_KEYS if k in old}}


def check_resume_checkpoint(run_dir, algo: str, map_name: str) -> Path:
    ckpt = Path(run_dir) / "checkpoints" / "last.pt"
    if not ckpt.is_file():
        raise MissingInput(f"cannot resume {run_dir}: no checkpoint at {ckpt} (the run stopped before its "
                           "first checkpoint: start it afresh without resume=)")
    try:
        check_torch_file(ckpt, "checkpoint", algo, map_name)
    except InputError as exc:
        raise type(exc)(f"cannot resume {run_dir}: {exc}") from None
    return ckpt


def check_sc2_game(map_name: str) -> None:
    """backend=sc2 needs the game (pysc2, SMAC, SC2PATH with the binary and maps): InputError, one line
    naming everything missing, before any run dir exists (not a traceback inside the Sacred run)."""
    from dm2_repro.envs.sc2 import check_sc2_available   # imports neither pysc2 nor SMAC itself

    try:
        check_sc2_available(map_name)
    except (RuntimeError, ValueError) as exc:
        lines = [line.strip().lstrip("- ").strip() for line in str(exc).splitlines() if line.strip()]
        raise InputError("backend=sc2: " + " ".join(lines[:1]) + " " + "; ".join(lines[1:])) from None


def check_train_config(updates: dict) -> dict:
    """Every check of a train config (see the module doc); returns it with a resume resolved.
    Raises InputError (a ValueError; MissingInput is also a FileNotFoundError)."""
    updates = normalise_train_keys(updates)
    check_train_keys(updates)
    resolved = resolve_resume(updates)
    if resolved is not updates:
        check_train_keys({k: resolved[k] for k in RUN_KEYS if k in resolved})   # the old run's own values
    cfg = {**TRAIN_DEFAULTS, **resolved}
    if cfg["backend"] == "sc2" and cfg["reward"] != "smac":
        raise InputError(f"reward={cfg['reward']!r} is for the smax backend; valid rewards on sc2: smac")
    from dm2_repro.envs import check_backend   # a task runs on its own backend (dm2_repro.envs.registry)
    try:
        check_backend(cfg["map"], cfg["backend"], cfg["reward"])
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if cfg["rollout"] == "jax" and cfg["backend"] not in JAX_BACKENDS:
        raise InputError(f"rollout=jax needs a JAX env (backends {', '.join(JAX_BACKENDS)}); backend "
                         f"{cfg['backend']!r} steps on the host: use rollout=python")
    hp = check_merged_hp(cfg["algo"], cfg["map"], cfg["scale"], dict(cfg["hp"] or {}))
    demo = str(resolve_in_results(cfg["demo"], cfg["results"])) if cfg["demo"] else cfg["demo"]
    check_demo(demo, cfg["algo"], cfg["map"], cfg["backend"], hp)
    if cfg["backend"] == "sc2":   # last: the other inputs' errors name the input itself
        check_sc2_game(cfg["map"])
    if cfg["resume"]:
        check_resume_checkpoint(cfg["resume"], cfg["algo"], cfg["map"])
    return resolved


def check_train_argv(argv: list[str]) -> dict:
    """check_train_config on a command line; exits with one line on a bad input."""
    try:
        return check_train_config(train_words(argv))
    except InputError as exc:
        fail(exc)
