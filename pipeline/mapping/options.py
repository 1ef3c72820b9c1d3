"""MapOptions: the settings of one map, validated.

They are the stride, batch size, DN range, nodata, preview, and a product's offset and cloud mask. Each field is
declared once here, help text included; the map command line's flags are derived from them (components/settings.py).
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

from components.settings import dataclass_setting, flag
from pipeline.mapping.errors import MapError
from pipeline.mapping.grid import check_stride
from pipeline.mapping.pixels import EUROSAT_DN_RANGE, check_dn_range
from schema.modalities import IMAGE_SIZE

MAP = "map"  # the map command line's group of these flags


@dataclasses.dataclass(frozen=True)
class MapOptions:
    """How a scene is mapped: each field is a setting of the map command line (components/settings.py)."""

    stride: int = dataclass_setting(
        IMAGE_SIZE, f"pixels between patch starts (64, 32, 16 or 8); below {IMAGE_SIZE} patches overlap, their "
        "probabilities are averaged and map cells are stride x stride px", group=MAP)
    batch_size: int = dataclass_setting(64, "patches per model call or request", group=MAP)
    dn_range: Tuple[float, float] = dataclass_setting(
        EUROSAT_DN_RANGE, "RGB digital numbers LOW,HIGH mapped to 1..255 as EuroSAT's RGB images were made; "
        "8-bit scenes are used as they are", group=MAP)
    max_nodata_fraction: float = dataclass_setting(
        0.0, "patches with more nodata/zero pixels than this are not classified", group=MAP)
    preview_size: int = dataclass_setting(1024, "longest side of the true-colour picture in landuse.png")
    dn_offset: float = dataclass_setting(
        0.0, "a folder of band files without metadata: the offset added to its digital numbers (-1000 for "
        "products of processing baseline 04.00 or later, i.e. since 25 January 2022); products with "
        "MTD_MSIL*.xml use their own (0: as they are; a ~1000 too bright scene shows)", group=MAP)
    cloud_mask: bool = dataclass_setting(
        True, "leave out the cells a product's cloud mask (L2A's SCL, L1C's MSK_CLASSI_B00) marks as cloud, "
        "cloud shadow, cirrus or saturated (--no-cloud-mask: classify them too)", group=MAP)

    def __post_init__(self) -> None:
        check_stride(self.stride)
        if self.batch_size < 1:
            raise MapError(f"{flag(MapOptions, 'batch_size')} {self.batch_size}: give 1 or more")
        check_dn_range(*self.dn_range)
        if not 0.0 <= self.max_nodata_fraction < 1.0:
            raise MapError(f"{flag(MapOptions, 'max_nodata_fraction')} {self.max_nodata_fraction}: "
                           "give a fraction in [0, 1)")
