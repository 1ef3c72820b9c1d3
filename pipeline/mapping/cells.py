"""The map's cells: the probabilities of the patches covering each, summed, then averaged to a class.

Memory: the map is kept as float32 probability sums per cell (44 bytes a cell): 1.3 MB for a full
Sentinel-2 tile at stride 64. The scene itself is only ever read one strip at a time.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from pipeline.mapping.grid import TileGrid
from schema import features

NODATA_CLASS = 255
NODATA_CONFIDENCE = 0.0  # a top probability is at least 0.1, so 0 cannot be a real value


class MapAccumulator:
    """Sums of the probabilities of the patches covering each map cell; averages on demand."""

    def __init__(self, grid: TileGrid):
        self.grid = grid
        self.sums = np.zeros((grid.cell_rows, grid.cell_cols, features.NUM_CLASSES), np.float32)
        self.counts = np.zeros((grid.cell_rows, grid.cell_cols), np.uint16)
        self.classified = 0

    def add(self, rows: np.ndarray, cols: np.ndarray, probabilities: np.ndarray) -> None:
        """Add patches (rows[i], cols[i]) to the cells each covers."""
        k = self.grid.cells_per_patch
        for dr in range(k):
            for dc in range(k):
                np.add.at(self.sums, (rows + dr, cols + dc), probabilities)
                np.add.at(self.counts, (rows + dr, cols + dc), 1)
        self.classified += len(rows)

    def result(self) -> Tuple[np.ndarray, np.ndarray]:
        """(uint8 class ids with NODATA_CLASS, float32 confidence with NODATA_CONFIDENCE)."""
        mapped = self.counts > 0
        mean = self.sums / np.maximum(self.counts, 1)[..., None]
        classes = np.where(mapped, mean.argmax(-1), NODATA_CLASS).astype(np.uint8)
        confidence = np.where(mapped, mean.max(-1), NODATA_CONFIDENCE).astype(np.float32)
        return classes, confidence
