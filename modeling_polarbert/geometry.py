"""The IceCube detector geometry shipped with the package (the Kaggle competition's sensor_geometry.csv)."""

from functools import lru_cache
from pathlib import Path

import numpy as np

SENSOR_GEOMETRY_PATH = Path(__file__).with_name("sensor_geometry.csv")
NUM_DOMS = 5160
DOMS_PER_STRING = 60


@lru_cache(maxsize=None)
def load_sensor_geometry(path: str | Path = SENSOR_GEOMETRY_PATH) -> np.ndarray:
    """DOM positions in metres, shape (5160, 3), row i = sensor_id i. Read-only (the array is cached)."""
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    if table.shape != (NUM_DOMS, 4) or not np.array_equal(table[:, 0], np.arange(NUM_DOMS)):
        raise ValueError(f"{path}: expected 5160 rows 'sensor_id,x,y,z' with sensor_id 0..5159 in order")
    positions = table[:, 1:].copy()
    positions.flags.writeable = False
    return positions
