"""dm2_repro: a reproduction package for DM² (Wang, Durugkar, Liebman, Stone)."""
import os

# On a GPU, JAX must not grab all device memory: torch shares the device.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

__version__ = "0.1.0"
