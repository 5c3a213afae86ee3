"""The claims report on fixture runs whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from dm2_repro import claims
from experiments import expand
from tests.fixtures_runs import write_job_run

STEPS = (0, 400, 800, 1200, 1600)


def write_curve(results, start_id, curve, finals, **kwargs):
    """One run per seed (as many as `finals`), win rate rising linearly to each final value."""
    for i, (job, final) in enumerate(zip(curve.jobs, finals)):
        write_job_run(results, start_id + i, job, final=final, steps=STEPS, **kwargs)


def curve(figure, key, map_name="5m_vs_6m"):
    plan = expand(figure, "smoke", n_seeds=3)
    return next(c for c in plan.curves if c.key == key and c.map == map_name)


@pytest.fixture
def results(tmp_path):
    # Clearly holds: QMIX far above QMIX with the IPPO agent network.
    write_curve(tmp_path, 1, curve("fig8", "qmix"), [0.90, 0.85, 0.95])
    write_curve(tmp_path, 4, curve("fig8", "qmix_ippo_arch"), [0.20, 0.25, 0.15])
    # Clearly refuted: GAIL-only beats IPPO.
    write_curve(tmp_path, 7, curve("fig6", "ippo", "3s_vs_4z"), [0.10, 0.15, 0.12])
    write_curve(tmp_path, 10, curve("fig6", "gail_only_early", "3s_vs_4z"), [0.80, 0.85, 0.90])
    # Not enough data: one BC seed.
    write_curve(tmp_path, 13, curve("fig5", "dm2"), [0.5, 0.5, 0.5])
    write_curve(tmp_path, 16, curve("fig5", "bc_dm2"), [0.5])
    # DM² well above its demonstrations' quality (recorded in the run's info).
    write_curve(tmp_path, 17, curve("fig2", "dm2_ippo_early"), [0.80, 0.90, 0.85],
                info={"demo": {"quality": 0.3}})
    return tmp_path


def outcome(outcomes, figure, map_name, a, b):
    return next(o for o in outcomes if (o.comparison.figure, o.comparison.map, o.comparison.a,
                                        o.comparison.b) == (figure, map_name, a, b))


def test_known_verdicts(results):
    outcomes = claims.evaluate_all(results, "smoke", n_seeds=3)
    holds = outcome(outcomes, "fig8", "5m_vs_6m", "qmix", "qmix_ippo_arch")
    assert holds.verdict == claims.HOLDS
    assert holds.run_ids == {"qmix": ["1", "2", "3"], "qmix_ippo_arch": ["4", "5", "6"]}
    fails = outcome(outcomes, "fig6", "3s_vs_4z", "ippo", "gail_only_early")
    assert fails.verdict == claims.FAILS
    no_data = outcome(outcomes, "fig5", "5m_vs_6m", "bc_dm2", "dm2")
    assert no_data.verdict == claims.NO_DATA and "n=1 vs 3" in no_data.measured
    above = outcome(outcomes, "fig2", "5m_vs_6m", "dm2_ippo_early", None)
    assert above.verdict == claims.HOLDS
    # Claims with no runs at all are "not enough data", never an error.
    assert outcome(outcomes, "fig4", "8m_vs_9m", "qmix", "dm2_ippo_late").verdict == claims.NO_DATA


def test_auc_difference_matches_a_direct_computation(results):
    outcomes = claims.evaluate_all(results, "smoke", n_seeds=3)
    holds = outcome(outcomes, "fig8", "5m_vs_6m", "qmix", "qmix_ippo_arch")
    # Linear rise from 0 to f over the whole range: normalised AUC = f / 2.
    expected = (np.mean([0.90, 0.85, 0.95]) - np.mean([0.20, 0.25, 0.15])) / 2
    assert holds.measured.startswith(f"ΔAUC = {expected:+.3f} [")


def test_bootstrap_and_verdict_rules():
    a, b = np.array([1.0, 1.1, 0.9]), np.array([0.0, 0.1, -0.1])
    assert claims.bootstrap_ci(a, b) == claims.bootstrap_ci(a, b)   # fixed generator seed
    estimate, low, high = claims.bootstrap_ci(a, b)
    assert estimate == pytest.approx(1.0) and 0.7 < low < 1.0 < high < 1.3
    assert claims.verdict(claims.GREATER, 0.1, 0.3) == claims.HOLDS
    assert claims.verdict(claims.GREATER, -0.3, -0.1) == claims.FAILS
    assert claims.verdict(claims.GREATER, -0.1, 0.3) == claims.INCONCLUSIVE
    assert claims.verdict(claims.EQUIVALENT, -0.05, 0.05) == claims.HOLDS
    assert claims.verdict(claims.EQUIVALENT, 0.2, 0.4) == claims.FAILS
    assert claims.verdict(claims.EQUIVALENT, 0.0, 0.2) == claims.INCONCLUSIVE


def test_report_is_written_and_deterministic(results, tmp_path, capsys):
    out = tmp_path / "claims.md"
    args = ["--results", str(results), "--out", str(out), "--seeds", "3"]
    assert claims.main(args) == 0
    first = out.read_text()
    assert claims.main(args) == 0
    assert out.read_text() == first
    assert "(smoke scale)" in first and "bootstrap" in first and "## Runs used" in first
    assert "qmix: 1, 2, 3; qmix_ippo_arch: 4, 5, 6" in first
    printed = capsys.readouterr().out
    assert "claim" in printed and "verdict" in printed and "does not hold" in printed


def test_check_detects_a_stale_report(results, tmp_path):
    out = tmp_path / "claims.md"
    args = ["--results", str(results), "--out", str(out), "--seeds", "3"]
    assert claims.main(args + ["--check"]) == 1  # missing
    assert claims.main(args) == 0
    assert claims.main(args + ["--check"]) == 0
    out.write_text(out.read_text().replace("holds", "HOLDS", 1))
    assert claims.main(args + ["--check"]) == 1
