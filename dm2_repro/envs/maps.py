"""The paper's five SMAC maps: unit lists and SMAC's episode limits."""
from __future__ import annotations

from dataclasses import dataclass

# SMAX unit type ids (jaxmarl): 0 marine, 1 marauder, 2 stalker, 3 zealot, 4 zergling, 5 hydralisk
UNIT_TYPE_ID = {"marine": 0, "marauder": 1, "stalker": 2, "zealot": 3, "zergling": 4, "hydralisk": 5}


@dataclass(frozen=True)
class MapInfo:
    allies: tuple[str, ...]
    enemies: tuple[str, ...]
    episode_limit: int  # SMAC's time limit for the map


MAPS: dict[str, MapInfo] = {
    "5m_vs_6m": MapInfo(("marine",) * 5, ("marine",) * 6, 70),
    "3s_vs_4z": MapInfo(("stalker",) * 3, ("zealot",) * 4, 200),
    "3s_vs_3z": MapInfo(("stalker",) * 3, ("zealot",) * 3, 150),
    "3s_vs_5z": MapInfo(("stalker",) * 3, ("zealot",) * 5, 250),
    "8m_vs_9m": MapInfo(("marine",) * 8, ("marine",) * 9, 120),
}


def map_info(name: str) -> MapInfo:
    if name not in MAPS:
        raise ValueError(f"unknown map {name!r}; valid maps: {', '.join(MAPS)}")
    return MAPS[name]
