"""One preset's verdicts beside another's (dm2_repro.verdicts.beside), on hand-written outcomes, and the claims
options that write them."""
from __future__ import annotations

import pytest

from dm2_repro import claims
from dm2_repro.verdicts import beside
from dm2_repro.verdicts.findings import EQUIVALENT, FAILS, GREATER, HOLDS, INCONCLUSIVE, NO_DATA, Comparison, Outcome


def outcome(a: str, test: str = GREATER, verdict: str = HOLDS, estimate: float | None = 0.1, margin: float = 0.1,
            holm: str = "", window: float = 1.0) -> Outcome:
    c = Comparison("finding", "paper", "fig2", "3s_vs_3z", a, "ippo", test, margin=margin, window=window)
    return Outcome(c, verdict, "", estimate=estimate, holm=holm)


def test_comparisons_pair_on_what_they_compare_not_on_the_margin():
    here = [outcome("dm2_ippo_early", EQUIVALENT, margin=0.05), outcome("dm2_ippo_late"),
            outcome("dm2_ippo_late", window=1 / 3)]
    there = [outcome("dm2_ippo_early", EQUIVALENT, margin=0.078), outcome("dm2_ippo_late", window=1 / 3, verdict=FAILS)]
    pairs = beside.paired(here, there)
    assert pairs[0][1] is there[0]          # the same "~" comparison, each preset's own margin
    assert pairs[1][1] is None              # the whole budget: not compared there
    assert pairs[2][1] is there[1]          # the first third matches the first third only


def test_a_margin_is_each_presets_own_and_a_default_says_so():
    here = outcome("dm2_ippo_late", EQUIVALENT, margin=0.1, estimate=0.02)     # paper: no declared margin
    there = outcome("dm2_ippo_late", EQUIVALENT, margin=0.078, estimate=0.02)  # cpu: 3s_vs_3z's declared ±0.078
    row = next(line for line in beside.block([here], [there], "paper", "cpu", "cmd").splitlines()
               if line.startswith("| finding |") and "fig2" in line)
    assert "(auc) |" in row and "±0.1, the default until this preset declares its own" in row
    assert "±0.078; after Holm" in row
    declared = outcome("dm2_ippo_late", EQUIVALENT, margin=0.056, estimate=0.02)   # paper_hp: set from its pilot
    row = next(line for line in beside.block([declared], [there], "paper_hp", "cpu", "cmd").splitlines()
               if line.startswith("| finding |") and "fig2" in line)
    assert "±0.056; after Holm" in row and "the default" not in row


def test_rows_say_whether_the_presets_agree():
    here = [outcome("a", verdict=HOLDS, holm=INCONCLUSIVE), outcome("b", verdict=NO_DATA, estimate=None),
            outcome("c", verdict=INCONCLUSIVE, estimate=-0.02)]
    there = [outcome("a", verdict=HOLDS, estimate=0.2, holm=HOLDS), outcome("b"),
             outcome("c", verdict=FAILS, estimate=-0.3, holm=FAILS)]
    text = beside.block(here, there, "paper_hp", "cpu", "python -m dm2_repro.claims ...")
    rows = [line for line in text.splitlines() if line.startswith("| finding | fig2")]
    assert rows[0].endswith("| **holds** (+0.100; after Holm: inconclusive) | **holds** (+0.200; after Holm: holds) | same |")
    assert rows[1].endswith(f"| {NO_DATA} | **holds** (+0.100; after Holm: holds) | — |")
    assert rows[2].endswith("| **differs** |")
    assert text.startswith(beside.START) and text.endswith(beside.END)
    assert "`paper_hp`: early = 50%, late = 70%" in text and "`cpu`: early = 15%, late = 25%" in text


@pytest.mark.parametrize("argv, message", [
    (["--beside", "cpu"], "--beside and --beside-into go together"),
    (["--scale", "cpu", "--beside", "cpu", "--beside-into", "README.md"], "the same preset as --scale"),
])
def test_beside_options_refuse_bad_input_in_one_line(argv, message, tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    with pytest.raises(SystemExit):
        claims.main(["--results", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_beside_into_a_file_without_its_markers_is_refused(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "README.md").write_text("no markers here\n")
    with pytest.raises(SystemExit):
        claims.main(["--results", str(tmp_path), "--scale", "paper_hp", "--beside", "cpu",
                     "--beside-into", str(tmp_path / "README.md")])
    assert "lacks the presets side by side's markers" in capsys.readouterr().err


def test_claims_writes_the_side_by_side_block_and_check_catches_a_stale_one(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{beside.START}\n{beside.END}\n\nafter\n")
    argv = ["--results", str(tmp_path), "--scale", "paper_hp", "--maps", "3s_vs_3z", "--curves", "ippo",
            "dm2_ippo_early", "dm2_ippo_late", "--out", str(tmp_path / "claims_paper_hp.md"),
            "--beside", "cpu", "--beside-into", str(readme)]
    assert claims.main(argv) == 0
    text = readme.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| DM²") or line.startswith("| Little")]
    assert len(rows) == 7 and all(row.count(NO_DATA) == 2 and row.endswith("| — |") for row in rows)   # no runs
    assert text.endswith("\n\nafter\n") and "--beside cpu --beside-into" in text
    assert claims.main([*argv, "--check"]) == 0
    readme.write_text(text.replace("| — |", "| same |", 1))
    capsys.readouterr()
    assert claims.main([*argv, "--check"]) == 1
    err = capsys.readouterr().err
    assert "regenerate it with python -m dm2_repro.claims --scale paper_hp --maps 3s_vs_3z" in err   # runnable as is
    assert "--beside cpu --beside-into" in err
