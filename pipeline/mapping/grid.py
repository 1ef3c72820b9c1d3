"""The tile grid: where a scene's 64x64 patches lie and the map cells they cover.

Patches start every ``stride`` pixels from the scene's top-left corner; the map's cells are
stride x stride pixels, so a cell is covered by (64 / stride)^2 patches, whose probabilities are
averaged. Pixels right of or below the last whole patch (the edge remainder) are not mapped.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

from pipeline.mapping.errors import MapError
from schema.modalities import IMAGE_SIZE


def check_stride(stride: int) -> int:
    """`stride` when it divides the patch size; MapError otherwise."""
    if stride < 1 or IMAGE_SIZE % stride:
        raise MapError(f"--stride {stride}: it must divide {IMAGE_SIZE} (64, 32, 16 or 8), so that "
                       "overlapping patches cover whole map cells")
    return stride


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Where the patches of a height x width scene lie, and the map cells they cover."""

    height: int
    width: int
    stride: int = IMAGE_SIZE

    def __post_init__(self) -> None:
        check_stride(self.stride)
        if self.height < IMAGE_SIZE or self.width < IMAGE_SIZE:
            raise MapError(f"the scene is {self.width}x{self.height} px, smaller than one {IMAGE_SIZE}x{IMAGE_SIZE} "
                           "patch: there is nothing to classify")

    @property
    def cells_per_patch(self) -> int:
        """Map cells along one side of a patch."""
        return IMAGE_SIZE // self.stride

    @property
    def rows(self) -> int:
        """Patch rows."""
        return (self.height - IMAGE_SIZE) // self.stride + 1

    @property
    def cols(self) -> int:
        """Patch columns."""
        return (self.width - IMAGE_SIZE) // self.stride + 1

    @property
    def patches(self) -> int:
        """Patches in the scene."""
        return self.rows * self.cols

    @property
    def cell_rows(self) -> int:
        """Rows of map cells."""
        return self.rows - 1 + self.cells_per_patch

    @property
    def cell_cols(self) -> int:
        """Columns of map cells."""
        return self.cols - 1 + self.cells_per_patch

    @property
    def strip_width(self) -> int:
        """Pixels a strip of patches spans across the scene."""
        return (self.cols - 1) * self.stride + IMAGE_SIZE

    def cell_transform(self, scene_transform):
        """The map's affine transform: the scene's, with pixels `stride` times larger."""
        from affine import Affine

        return scene_transform @ Affine.scale(self.stride)

    def patch_centre(self, scene_transform, row: int, col: int) -> Tuple[float, float]:
        """Map coordinates (x, y) of the centre of patch (row, col)."""
        return scene_transform @ (col * self.stride + IMAGE_SIZE / 2, row * self.stride + IMAGE_SIZE / 2)
