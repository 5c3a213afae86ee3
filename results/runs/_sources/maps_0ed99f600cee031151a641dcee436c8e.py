"""Every map and task name the package knows: the one home of the map list.

- PAPER_MAPS: the paper's five SMAC maps (paper_tables.yaml has their per-map settings).
- SMAX_SCENARIOS: further SMAC maps that jaxmarl's SMAX knows (`MAP_NAME_TO_SCENARIO`), run on the
  smax backend (and on sc2 where SMAC has the map). Their settings are the paper's IPPO/GAIL defaults.
- registered tasks (dm2_repro.envs.registry.register_env): any other environment.

`MAPS` is a live mapping over all three, so `name in MAPS`, `MAPS[name].allies` and listing the
valid names need no JAX import. The unit lists are transcribed from jaxmarl 0.2.0's
MAP_NAME_TO_SCENARIO (tests/test_envs.py checks them against it), the episode limits from SMAC's
map registry (oxwhirl/smac smac/env/starcraft2/maps/smac_maps.py, "limit").
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# SMAX unit type ids (jaxmarl): 0 marine, 1 marauder, 2 stalker, 3 zealot, 4 zergling, 5 hydralisk
UNIT_TYPE_ID = {"marine": 0, "marauder": 1, "stalker": 2, "zealot": 3, "zergling": 4, "hydralisk": 5}


@dataclass(frozen=True)
class MapInfo:
    allies: tuple[str, ...]
    enemies: tuple[str, ...]
    episode_limit: int  # SMAC's time limit for the map


def _units(*groups: tuple[int, str]) -> tuple[str, ...]:
    return tuple(unit for n, unit in groups for _ in range(n))


PAPER_MAP_INFO: dict[str, MapInfo] = {
    "5m_vs_6m": MapInfo(_units((5, "marine")), _units((6, "marine")), 70),
    "3s_vs_4z": MapInfo(_units((3, "stalker")), _units((4, "zealot")), 200),
    "3s_vs_3z": MapInfo(_units((3, "stalker")), _units((3, "zealot")), 150),
    "3s_vs_5z": MapInfo(_units((3, "stalker")), _units((5, "zealot")), 250),
    "8m_vs_9m": MapInfo(_units((8, "marine")), _units((9, "marine")), 120),
}
PAPER_MAPS: tuple[str, ...] = tuple(PAPER_MAP_INFO)

# jaxmarl's fixed-composition scenarios beyond the paper's maps (its smacv2_* ones draw random
# units and positions each episode, which the smax backend's scenario does not model: left out)
SMAX_SCENARIOS: dict[str, MapInfo] = {
    "3m": MapInfo(_units((3, "marine")), _units((3, "marine")), 60),
    "8m": MapInfo(_units((8, "marine")), _units((8, "marine")), 120),
    "25m": MapInfo(_units((25, "marine")), _units((25, "marine")), 150),
    "10m_vs_11m": MapInfo(_units((10, "marine")), _units((11, "marine")), 150),
    "27m_vs_30m": MapInfo(_units((27, "marine")), _units((30, "marine")), 180),
    "2s3z": MapInfo(_units((2, "stalker"), (3, "zealot")), _units((2, "stalker"), (3, "zealot")), 120),
    "3s5z": MapInfo(_units((3, "stalker"), (5, "zealot")), _units((3, "stalker"), (5, "zealot")), 150),
    "3s5z_vs_3s6z": MapInfo(_units((3, "stalker"), (5, "zealot")), _units((3, "stalker"), (6, "zealot")), 170),
    "6h_vs_8z": MapInfo(_units((6, "hydralisk")), _units((8, "zealot")), 150),
}
SMAC_MAPS: dict[str, MapInfo] = {**PAPER_MAP_INFO, **SMAX_SCENARIOS}   # the smax / sc2 backends' maps


class _Maps(Mapping):
    """SMAC maps, then registered tasks (looked up in dm2_repro.envs.registry on each access, so a
    task registered after import is known)."""

    def _tasks(self) -> dict:
        from .registry import tasks

        return tasks()

    def __getitem__(self, name: str):
        if name in SMAC_MAPS:
            return SMAC_MAPS[name]
        return self._tasks()[name].info

    def __contains__(self, name) -> bool:
        return name in SMAC_MAPS or name in self._tasks()

    def __iter__(self):
        yield from SMAC_MAPS
        yield from (name for name in self._tasks() if name not in SMAC_MAPS)

    def __len__(self) -> int:
        return sum(1 for _ in self)


MAPS: Mapping = _Maps()


def map_info(name: str) -> MapInfo:
    """A SMAC map's units and limit, or a registered task's (agents as `allies`, no enemies)."""
    if name not in MAPS:
        raise ValueError(f"unknown map {name!r}; valid maps: {', '.join(MAPS)}")
    return MAPS[name]
