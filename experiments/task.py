"""Your own task(s): IPPO and DM² on the maps given by --maps (docs/own_task.md).

    python -m dm2_repro.run task --maps simple_spread --scale smoke
    python -m dm2_repro.figure task --maps simple_spread --scale smoke

One panel per map. DM² imitates the IPPO experts of its own seed at their "late" snapshot (as in
fig2). A registered task runs on its own backend (dm2_repro.envs.registry); a SMAC map (the
paper's, or another SMAX scenario such as 2s3z) on --backend. The panel plots the task's metric
(win rate, or test return for tasks registered with metric="return").
"""
from __future__ import annotations

from dataclasses import replace

from dm2_repro.envs import find_task
from dm2_repro.sweeps.plan import Context, Curve, FigureDef, format_steps


def task_context(context: Context, map_name: str) -> Context:
    """The context whose backend runs `map_name`: a task's own, else the user's --backend."""
    task = find_task(map_name)
    return replace(context, backend=task.backend) if task else context


def task_curves(figure: str, context: Context) -> list[Curve]:
    curves = []
    for map_name in context.maps:
        ctx = task_context(context, map_name)
        step = ctx.demo_step(map_name, "late")
        curves.append(ctx.curve(figure, map_name, "ippo", "IPPO", "ippo", map_name))
        curves.append(ctx.curve(figure, map_name, "dm2", f"DM² (IPPO demo, {format_steps(step)})", "dm2", map_name,
                                lambda seed, m=map_name, s=step, c=ctx: c.ippo_demo(m, seed, s)))
    return curves


FIGURE = FigureDef(
    name="task",
    title="IPPO and DM² on your task",
    build=lambda context: task_curves("task", context),
    needs_maps=True,
)


if __name__ == "__main__":   # python experiments/task.py with scale=cpu jobs=2: the sweep as a Sacred run
    from dm2_repro.sweeps.command_line import main

    main("task")
