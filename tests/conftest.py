"""Shared fixtures. JAX compiles per (map, batch size): every test that needs a SMAX env uses
3s_vs_3z with 4 envs (the smoke preset's n_envs), so the compiled step is shared."""
from __future__ import annotations

import warnings

import pytest
import torch

# tiny networks on a loaded 2-core machine: one thread is much faster than two fighting threads
torch.set_num_threads(1)
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

TEST_MAP = "3s_vs_3z"
TEST_N_ENVS = 4


@pytest.fixture(scope="session")
def smax_env():
    from dm2_repro.envs import make_env

    return make_env("smax", TEST_MAP, TEST_N_ENVS)


@pytest.fixture(scope="session")
def spec(smax_env):
    return smax_env.spec


@pytest.fixture(scope="session")
def smoke_ippo_run(tmp_path_factory):
    """One finished smoke-scale IPPO run (with policy snapshots), shared by the tests that need an expert."""
    from dm2_repro import train

    results = tmp_path_factory.mktemp("results")
    r = train.run(dict(algo="ippo", map=TEST_MAP, seed=1, scale="smoke"), results_dir=str(results))
    assert r.status == "COMPLETED"
    return results / "runs" / str(r._id)
