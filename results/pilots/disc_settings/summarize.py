"""Summary of the discriminator-settings pilot (README, DEPARTURES): per setting, the mean of the
expert-side and agent-side discriminator accuracy at every logged point after the first update,
in the first 35k steps (the first third of the 3s_vs_3z cpu budget), and the test win rates.

    python results/pilots/disc_settings/summarize.py   # writes summary.csv next to it

The runs: python -m dm2_repro.train with algo=dm2 map=3s_vs_3z seed=1 scale=cpu tag=disc_<steps>_<batch>
hp.t_max=35000 hp.gail_epochs=<steps> hp.gail_batch_episodes=<batch> demo=<IPPO seed 1, 25k snapshot>
"""
import csv
import json
from pathlib import Path

here = Path(__file__).parent
rows = []
for run in sorted((here / "runs").glob("[0-9]*")):
    cfg, m = json.loads((run / "config.json").read_text()), json.loads((run / "metrics.json").read_text())
    e, a = m["disc_expert_acc"]["values"][1:], m["disc_agent_acc"]["values"][1:]
    sep = [(x + y) / 2 for x, y in zip(e, a)]
    rows.append(dict(run=run.name, tag=cfg["tag"], gail_epochs=cfg["hp"]["gail_epochs"],
                     gail_batch_episodes=cfg["hp"]["gail_batch_episodes"], accuracy_min=round(min(sep), 3),
                     accuracy_max=round(max(sep), 3), accuracy_mean=round(sum(sep) / len(sep), 3),
                     test_win_final=round(m["test_battle_won_mean"]["values"][-1], 3)))
with open(here / "summary.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
for r in rows:
    print(r)
