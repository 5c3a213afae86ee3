"""The optimised learners compute the same update as the implementation at d13363a (the oracle,
recorded by tests/oracle/make_update_oracle.py): same losses, same updated parameters, on a fixed
batch with variable-length episodes, masked actions and a time-limit end."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dm2_repro.algos import make_learner
from tests.oracle.make_update_oracle import ALGOS, run_update

ORACLE = Path(__file__).parent / "oracle" / "update_d13363a.pt"


@pytest.fixture(scope="module")
def oracle():
    return torch.load(ORACLE, weights_only=True)


@pytest.mark.parametrize("algo", ALGOS)
def test_one_update_equals_the_oracle(oracle, algo):
    ref = oracle[algo]
    # the oracle (d13363a) predates train's gail_reward key: its DM² learns from the `logit` form
    init, stats, params = run_update(algo, lambda *a, **k: make_learner(*a, gail_reward="logit", **k))
    for name, value in ref["params"].items():  # the same initial networks: seeds consumed identically
        assert name in params, name
    for key, sd in ref["init"].items():
        if isinstance(sd, dict) and "opt" not in key and key not in ("buffer", "counters"):
            for name, v in sd.items():
                if isinstance(v, torch.Tensor):
                    torch.testing.assert_close(init[key][name], v, msg=f"initial {key}.{name}")
    assert set(stats) >= set(ref["stats"])
    for k, v in ref["stats"].items():
        assert stats[k] == pytest.approx(v, rel=1e-4, abs=1e-5), k
    for name, v in ref["params"].items():
        torch.testing.assert_close(params[name], v, rtol=1e-4, atol=1e-5, msg=f"updated {name}")
    moved = sum((ref["params"][n] - ref["init"][n.split(".")[0]][n.split(".", 1)[1]]).abs().sum().item()
                for n in ref["params"])
    assert moved > 0  # the update changed the networks, so equality above is not vacuous
