"""Training: what one run (`python -m dm2_repro.train`) is made of besides its learner.

    rollout.py      lockstep collection of whole episodes into padded EpisodeBatches (any env)
    jax_rollout.py  the same episodes collected inside jitted JAX scans (train's rollout=jax, JAX envs)
    snapshots.py    policy snapshots and checkpoints on disk, and their checks
    tracking.py     TensorBoard, MongoDB, Weights & Biases, git: where a run is recorded besides its folder
"""
