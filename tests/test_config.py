"""dm2_repro.config: the one generic YAML loader, HP field documentation, and that the refactor
changed no resolved value (tests/fixtures/hp_before.json, made by tests/fixtures/make_hp_before.py
from the code before it)."""
from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import pytest
import yaml

from dm2_repro import config
from dm2_repro.algos import ALGOS
from dm2_repro.config import HP, ORIGINS, SCALES, TablesError, make_hp, paper_tables, table_values
from dm2_repro.envs import PAPER_MAPS

BEFORE = Path(__file__).parent / "fixtures" / "hp_before.json"


def test_resolved_hp_of_every_algo_paper_map_and_scale_is_unchanged():
    before = json.loads(BEFORE.read_text())
    combos = {f"{algo}/{m}/{scale}" for algo in ALGOS for m in PAPER_MAPS for scale in SCALES}
    assert set(before) == combos   # the fixture covers every combination, nothing else
    changed = {key: {k: (v, asdict(make_hp(*key.split("/"))).get(k)) for k, v in values.items()
                     if asdict(make_hp(*key.split("/"))).get(k) != v}
               for key, values in before.items()}
    assert not {k: v for k, v in changed.items() if v}, "make_hp changed a resolved value"
    assert {f.name for f in fields(HP)} == set(next(iter(before.values())))   # no field added or dropped


def test_every_yaml_key_is_read_by_the_field_that_declares_it():
    tables = paper_tables()
    for f in fields(HP):
        key = f.metadata.get("yaml")
        if not key:
            continue
        section, name = key.split(".")
        if section == "maps":
            for m in PAPER_MAPS:
                assert getattr(make_hp("ippo", m, "paper"), f.name) == tables["maps"][m][name], (f.name, m)
        else:
            assert getattr(make_hp("ippo", "3s_vs_3z", "paper"), f.name) == tables[section][name], f.name
    declared = {f.metadata["yaml"] for f in fields(HP) if "yaml" in f.metadata}
    in_yaml = {f"{s}.{k}" for s, entries in tables.items() if isinstance(entries, dict) and s != "maps"
               for k in entries}
    in_yaml |= {f"maps.{k}" for settings in tables["maps"].values() for k in settings
                if f"maps.*.{k}" not in config.NOT_HP_KEYS}
    assert in_yaml == declared   # no YAML key without a field, no field pointing at a missing key
    assert set(tables["maps"]) == set(PAPER_MAPS)   # the per-map table is the one map list's paper maps


@pytest.mark.parametrize("section, key", [("qmix", "double_q"), ("rmappo", "use_value_norm"),
                                          ("maps", "5m_vs_6m.gamma")])
def test_a_yaml_key_no_field_reads_is_a_one_line_error(monkeypatch, section, key):
    tables = yaml.safe_load(config.TABLES_PATH.read_text())
    if section == "maps":
        m, k = key.split(".")
        tables["maps"][m][k] = 0.9
    else:
        tables[section][key] = True
    monkeypatch.setattr(config, "paper_tables", lambda: tables)
    table_values.cache_clear()
    try:
        with pytest.raises(TablesError) as error:
            make_hp("ippo", "3s_vs_3z", "cpu")
        message = str(error.value)
        assert "\n" not in message and "read by no HP field" in message
        assert (f"{section}.{key}" in message)
    finally:
        table_values.cache_clear()


def test_every_hp_field_says_what_it_is_and_where_its_value_comes_from():
    for f in fields(HP):
        doc, origin = f.metadata.get("doc", ""), f.metadata.get("origin")
        assert doc.strip() and "\n" not in doc, f.name
        assert origin in ORIGINS, f.name


def test_maps_outside_the_tables_get_the_paper_defaults_and_preset_budgets():
    defaults = {f.name: f.default for f in fields(HP)}
    for scale in SCALES:
        hp = make_hp("dm2", "2s3z", scale)   # a SMAX scenario: no per-map entry in the tables
        paper_map = make_hp("dm2", "3s_vs_3z", scale)
        for name in ("lr", "hidden", "gamma", "gail_lr", "gail_epochs", "demo_episodes", "qmix_lr"):
            assert getattr(hp, name) == getattr(paper_map, name), name   # the global sections
        preset = config.PRESETS[scale]
        for name in ("ppo_epochs", "clip", "gail_coef", "test_episodes"):
            assert getattr(hp, name) == preset.get(name, defaults[name]), name
        assert hp.t_max == preset.get("t_max", defaults["t_max"])


def test_unknown_map_and_scale_are_one_line_errors():
    with pytest.raises(ValueError, match=r"unknown map '3s_vs_99z'; valid maps: .*2s3z.*simple_spread"):
        make_hp("ippo", "3s_vs_99z", "cpu")
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        make_hp("ippo", "3s_vs_3z", "huge")


def test_backends_have_one_home():
    from dm2_repro import envs
    from dm2_repro.sweeps import plan as experiments

    assert experiments.BACKENDS is envs.BACKENDS
    assert envs.BACKENDS[:2] == ("smax", "sc2")


def test_paper_hp_keeps_every_per_update_setting_of_the_paper_and_changes_only_budget_and_spacing():
    changed_by_preset = {"t_max", "save_policy_every", "checkpoint_every"}
    for algo in ALGOS:
        for m in PAPER_MAPS:
            ours, paper = asdict(make_hp(algo, m, "paper_hp")), asdict(make_hp(algo, m, "paper"))
            differ = {k for k in paper if ours[k] != paper[k]}
            assert differ <= changed_by_preset, (algo, m, differ - changed_by_preset)
            assert ours["t_max"] == config.PAPER_HP_T_MAX.get(m, paper["t_max"])
            assert ours["t_max"] < paper["t_max"] or m not in config.PAPER_HP_T_MAX
    hp = make_hp("dm2", "3s_vs_3z", "paper_hp")   # the values the issue names, read back
    assert (hp.buffer_episodes, hp.gail_epochs, hp.gail_batch_episodes, hp.demo_episodes) == (1024, 120, 64, 1000)
    assert "paper_hp" in config.DEPARTURES and "PAPER_HP_T_MAX" in config.DEPARTURES["paper_hp"]
