"""MapOptions: the settings of one map (stride, batch size, DN range, nodata, preview, a product's
offset and cloud mask), validated."""
from __future__ import annotations

import dataclasses
from typing import Tuple

from pipeline.mapping.errors import MapError
from pipeline.mapping.grid import PATCH, check_stride
from pipeline.mapping.pixels import EUROSAT_DN_RANGE, check_dn_range


@dataclasses.dataclass(frozen=True)
class MapOptions:
    stride: int = PATCH  # pixels between patch starts; < 64 overlaps and averages
    batch_size: int = 64  # patches per model call / request
    dn_range: Tuple[float, float] = EUROSAT_DN_RANGE  # RGB digital numbers mapped to 1..255
    max_nodata_fraction: float = 0.0  # patches with more nodata pixels are not classified
    preview_size: int = 1024  # longest side of the true-colour picture in landuse.png
    # A folder of Sentinel-2 band files without metadata: the DN offset (-1000 from baseline 04.00);
    # products with metadata use theirs. 0: the DNs as they are (a ~1000 too bright scene shows).
    dn_offset: float = 0.0
    cloud_mask: bool = True  # a product's SCL / MSK_CLASSI_B00 clouds are no data

    def __post_init__(self) -> None:
        check_stride(self.stride)
        if self.batch_size < 1:
            raise MapError(f"--batch-size {self.batch_size}: give 1 or more")
        check_dn_range(*self.dn_range)
        if not 0.0 <= self.max_nodata_fraction < 1.0:
            raise MapError(f"--max-nodata-fraction {self.max_nodata_fraction}: give a fraction in [0, 1)")
