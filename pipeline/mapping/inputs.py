"""What ``map --input`` is -> the dataset the map reads.

A Sentinel-2 product (``product``, ``bands``), a folder/zip of neighbouring georeferenced patches (``mosaic``), or a
raster (``scene``). The local run and the Beam pipeline both open their inputs here.
"""
from __future__ import annotations

import os
from typing import Optional

from pipeline.mapping import mosaic, product
from pipeline.mapping import scene as scenes
from pipeline.mapping.bands import ProductRaster, cloud_mask_note
from pipeline.mapping.errors import MapError
from pipeline.mapping.options import MapOptions


def open_scene(path: str, modality: str, options: MapOptions = MapOptions(), work_dir: Optional[str] = None):
    """The dataset of `path` for a model of `modality`.

    A ProductRaster, the mosaic of a folder/zip of patches (written into `work_dir`; None: refused, as on Beam
    workers) or the raster itself.
    """
    if product.looks_like_product(path):
        return ProductRaster(product.find_product(path, options.dn_offset), modality, options.cloud_mask)
    if mosaic.is_patch_collection(path):
        if work_dir is None:
            raise MapError(f"--beam maps rasters and Sentinel-2 products; {path!r} is a folder/zip of patches: map "
                           "it without --beam (it is mosaicked first), or give the mosaic")
        mosaic.check_patches(path, modality)  # before anything is written
        os.makedirs(work_dir, exist_ok=True)
        path = mosaic.mosaic_patches(path, os.path.join(work_dir, mosaic.MOSAIC_FILE))
    return scenes.open_raster(path)


def product_summary(dataset, options: MapOptions) -> dict:
    """{"product": ...} for summary.json when `dataset` is a product; {} for a raster.

    A product's entry holds its level, baseline, offsets applied, cloud mask and its masked share, and warnings.
    """
    if not isinstance(dataset, ProductRaster):
        return {}
    summary = dataset.summary()
    summary["warnings"] += cloud_mask_note(dataset, options.cloud_mask)
    if dataset.product.level is None and not options.dn_offset:
        summary["warnings"].append(
            "no metadata: the DNs are used without an offset (--dn-offset 0); products of processing baseline "
            "04.00 or later (from 25 January 2022, and the reprocessed collection) need --dn-offset -1000")
    return {"product": summary}
