"""A Sentinel-2 product (``product.Product``) -> the model's bands on the 10 m grid, read window by window.

``ProductRaster`` looks to the map like the rasterio dataset of a stacked scene (name, width,
height, count, dtypes, crs, transform, ``read(indexes, window=, out_shape=, resampling=)``,
``dataset_mask(window=)``), so ``scene.read_strip``, the preview and the outputs read a product as
they read a GeoTIFF, one strip of 64 rows at a time: memory stays flat on a full 10,980² tile.

- **Grid**: the finest band's (10 m for every model: B02/B03/B04/B08). A window of the map reads,
  of each band file, only the rows it needs (plus the kernel's margin), decoded whole JPEG2000
  block rows at a time (``BlockRows``: GDAL's JPEG2000 driver decodes a read of part of a block
  afresh each time, so 64-row strips of a 1024-row block would decode it 16 times); one block row
  a band is kept (two while a strip crosses a block boundary): ~22 MB for a 10 m band of a full
  tile, ~170 MB for the 13 bands, whatever the product's length. The preview (a decimated read of
  whole bands) goes through a ``WarpedVRT`` instead.
- **Resampling**: cubic spline (GDAL's ``cubicspline``, through its warper:
  ``rasterio.warp.reproject`` of the block rows onto the strip), as EuroSAT's authors upsampled the
  20/60 m bands, so a 13-band model sees the smoothness it was trained on. The warper's kernel
  leaves out no-data pixels (DN 0, the product's borders), so a border does not darken its
  neighbours and a product written with and without an offset stays identical. Masks (SCL,
  MSK_CLASSI) are resampled by nearest neighbour: their values are classes.
- **Radiometry**: ``(DN + offset) * 10,000 / QUANTIFICATION_VALUE`` (the metadata's per-band
  offset and quantification; ``--dn-offset`` for a folder without metadata), rounded and clipped
  at 0: EuroSAT's scale (reflectance x 10,000, no offset). DN 0 (no data) stays 0.
- **Clouds** (unless ``--no-cloud-mask``): L2A's SCL classes 0 no data, 1 saturated/defective,
  3 cloud shadow, 8/9 cloud medium/high probability and 10 thin cirrus, and L1C's MSK_CLASSI_B00
  (baseline >= 04.00: its opaque-cloud and cirrus bands), are no data in ``dataset_mask``, which
  ``pixels.classifiable_patches`` already honours.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from pipeline.mapping.errors import MapError
from pipeline.mapping.product import EUROSAT_QUANTIFICATION, Product, bands_for_model

SCL_MASKED = (0, 1, 3, 8, 9, 10)  # no data, saturated/defective, cloud shadow, cloud medium/high, thin cirrus
CLASSI_MASKED_BANDS = (1, 2)  # MSK_CLASSI_B00: 1 opaque clouds, 2 cirrus (3 snow and ice is land)
MASK_SHARE_SIDE = 1024  # the masked share is counted on a decimated read of the mask, this side at most
KERNEL_MARGIN = 4  # source rows read beyond a window on each side: the cubic spline's reach is 2


class BlockRows:
    """Rows of a band file, decoded whole block rows at a time.

    The block rows of the last request are kept (a strip of 64 rows inside a 1024-row block decodes it once, not 16
    times).
    """

    def __init__(self, src, indexes: Sequence[int] = (1,)):
        self.src, self.indexes = src, list(indexes)
        self.block = src.block_shapes[0][0]
        self._rows: Dict[int, np.ndarray] = {}

    def read(self, first: int, last: int) -> np.ndarray:
        """[bands, rows, width] of source rows first..last-1 (clipped to the file)."""
        from rasterio.windows import Window

        first, last = max(0, first), min(self.src.height, last)
        needed = range(first // self.block, (last - 1) // self.block + 1)
        for k in needed:
            if k not in self._rows:
                window = Window(0, k * self.block, self.src.width, min(self.block, self.src.height - k * self.block))
                self._rows[k] = self.src.read(self.indexes, window=window)
        for k in [k for k in self._rows if k not in needed]:
            del self._rows[k]
        rows = np.concatenate([self._rows[k] for k in needed], axis=1) if len(needed) > 1 else self._rows[needed[0]]
        return rows[:, first - needed[0] * self.block : last - needed[0] * self.block]


def _open_band(path: str, shown: str):
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        name = path.split("/vsizip/")[-1]
        raise MapError(f"--input {shown!r}: band file {name.split('/')[-1]!r} is not readable ({reason}); "
                       "download the product again") from None


class ProductRaster:
    """The model's bands of a product, on the finest band's grid, in the model's order."""

    def __init__(self, product: Product, modality: str, cloud_mask: bool = True):
        from rasterio.enums import ColorInterp

        self.product = product
        self.band_names, self.warnings = bands_for_model(product, modality)
        self.name = product.path
        self._files: List[Any] = []  # the open rasterio datasets, closed by close()
        sources = {b: self._open(product.band_files[b]) for b in self.band_names}
        reference = min(sources.values(), key=lambda s: s.res[0])
        self.width, self.height = reference.width, reference.height
        self.crs, self.transform, self.res = reference.crs, reference.transform, reference.res
        self.count = len(self.band_names)
        self.dtypes = ("uint16",) * self.count
        self.colorinterp = (ColorInterp.gray,) * self.count
        for band, src in sources.items():
            if src.crs != self.crs or not np.allclose(src.bounds, reference.bounds, atol=max(src.res)):
                raise MapError(f"--input {product.path!r}: band {band} covers {tuple(src.bounds)} in {src.crs}, "
                               f"the 10 m bands {tuple(reference.bounds)} in {self.crs}: not one tile; give one "
                               "product's band files")
            if src.count != 1 or src.dtypes[0] not in ("uint16", "uint8"):
                raise MapError(f"--input {product.path!r}: band {band} has {src.count} bands of {src.dtypes[0]}, "
                               "not one of Sentinel-2 digital numbers (uint16)")
        self._bands = [self._on_grid(sources[b], "cubic_spline") for b in self.band_names]
        self._rows = [BlockRows(sources[b]) for b in self.band_names]
        self._scale = [(product.offsets.get(b, 0.0), EUROSAT_QUANTIFICATION / product.quantification)
                       for b in self.band_names]
        self.mask_kind = product.mask_kind if cloud_mask and product.mask_file else None
        mask = self._open(product.mask_file) if self.mask_kind and product.mask_file else None
        self._mask = self._on_grid(mask, "nearest") if mask else None
        mask_bands = (1,) if self.mask_kind == "SCL" else CLASSI_MASKED_BANDS
        self._mask_rows = BlockRows(mask, mask_bands) if mask else None

    def _open(self, path: str):
        src = _open_band(path, self.product.path)
        self._files.append(src)
        return src

    def _on_grid(self, src, resampling: str):
        """`src` on the reference grid: itself, or a WarpedVRT (windowed, resampled on the fly)."""
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        if (src.width, src.height) == (self.width, self.height):
            return src
        vrt = WarpedVRT(src, crs=self.crs, transform=self.transform, width=self.width, height=self.height,
                        resampling=Resampling[resampling], src_nodata=0 if resampling != "nearest" else None,
                        nodata=0 if resampling != "nearest" else None)
        self._files.append(vrt)
        return vrt

    def _window_of(self, rows: BlockRows, window, resampling: str) -> np.ndarray:
        """[bands, h, w] of `rows`' file on the grid's `window` (None: all of it).

        The rows it needs, resampled by GDAL's warper when the file is coarser than the grid.
        """
        from affine import Affine
        from rasterio.enums import Resampling
        from rasterio.warp import reproject
        from rasterio.windows import Window

        window = window or Window(0, 0, self.width, self.height)
        row0, height = int(window.row_off), int(window.height)
        col0, width = int(window.col_off), int(window.width)
        src = rows.src
        if src.height == self.height:
            return rows.read(row0, row0 + height)[:, :, col0 : col0 + width]
        scale = src.height / self.height
        first = int(np.floor(row0 * scale)) - KERNEL_MARGIN
        block = rows.read(first, int(np.ceil((row0 + height) * scale)) + KERNEL_MARGIN)
        first = max(0, first)
        out = np.zeros((block.shape[0], height, self.width), block.dtype)
        nodata = 0 if resampling != "nearest" else None
        reproject(block, out, src_transform=src.transform @ Affine.translation(0, first), src_crs=src.crs,
                  dst_transform=self.transform @ Affine.translation(0, row0), dst_crs=self.crs,
                  resampling=Resampling[resampling], src_nodata=nodata, dst_nodata=nodata)
        return out[:, :, col0 : col0 + width]

    # --- what the map reads (rasterio's dataset interface) -------------------------------------
    def read(self, indexes: Sequence[int], window=None, out_shape=None, resampling=None) -> np.ndarray:
        """[len(indexes), rows, cols] uint16 on EuroSAT's scale (indexes 1-based, the model's order)."""
        from rasterio.enums import Resampling

        kwargs = {"window": window}
        if out_shape is not None:
            kwargs.update(out_shape=tuple(out_shape[-2:]), resampling=resampling or Resampling.nearest)
        out = []
        for index in indexes:
            try:
                raw = (self._bands[index - 1].read(1, **kwargs) if out_shape is not None else
                       self._window_of(self._rows[index - 1], window, "cubic_spline")[0])
            except Exception as err:  # a corrupt JPEG2000 fails on decode, not on open
                band = self.band_names[index - 1]
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise MapError(f"--input {self.product.path!r}: band {band} cannot be decoded ({reason}); "
                               "download the product again") from None
            offset, factor = self._scale[index - 1]
            values = np.rint((raw.astype(np.float32) + offset) * factor)
            out.append(np.where(raw == 0, 0, np.clip(values, 0, 65535)).astype(np.uint16))
        return np.stack(out)

    def dataset_mask(self, window=None, out_shape=None) -> np.ndarray:
        """255 where the cloud mask lets a pixel through, 0 where it masks it.

        No-data pixels are not masked here: they come from the all-zero rule of pixels.classifiable_patches.
        """
        kwargs = {"window": window}
        if out_shape is not None:
            kwargs["out_shape"] = tuple(out_shape[-2:])
        if self._mask is None or self._mask_rows is None:
            rows, cols = (out_shape[-2:] if out_shape is not None else
                          (int(window.height), int(window.width)) if window is not None else (self.height, self.width))
            return np.full((rows, cols), 255, np.uint8)
        values = (self._mask.read(self._mask_rows.indexes, **kwargs) if out_shape is not None else
                  self._window_of(self._mask_rows, window, "nearest"))
        if self.mask_kind == "SCL":
            masked = np.isin(values[0], SCL_MASKED)
        else:
            masked = np.any(values > 0, axis=0)
        return np.where(masked, 0, 255).astype(np.uint8)

    def masked_share(self) -> Optional[float]:
        """The share of the product's data pixels that the cloud mask masks.

        Counted on the mask file itself (20/60 m), decimated to MASK_SHARE_SIDE, against B01's data pixels (60 m)
        for MSK_CLASSI, SCL's own class 0 otherwise; small reads, no warping of the 10 m grid.
        """
        from rasterio.enums import Resampling

        if self._mask is None or self._mask_rows is None:
            return None
        src = self._mask_rows.src
        scale = min(1.0, MASK_SHARE_SIDE / max(src.width, src.height))
        shape = (max(1, int(src.height * scale)), max(1, int(src.width * scale)))
        values = src.read(self._mask_rows.indexes, out_shape=(len(self._mask_rows.indexes), *shape),
                          resampling=Resampling.nearest)
        if self.mask_kind == "SCL":
            data, masked = values[0] != 0, np.isin(values[0], SCL_MASKED)
        else:
            import rasterio

            with rasterio.open(self.product.band_files["B01"]) as b01:
                data = b01.read(1, out_shape=shape, resampling=Resampling.nearest) != 0
            masked = np.any(values > 0, axis=0)
        return round(float((masked & data).sum()) / max(1, int(data.sum())), 4)

    def summary(self) -> Dict[str, Any]:
        """What summary.json records of the product: level, baseline, offsets applied, mask."""
        p = self.product
        return {"level": p.level, "processing_baseline": p.baseline, "bands": list(self.band_names),
                "radiometric_offset": {b: p.offsets.get(b, 0.0) for b in self.band_names},
                "quantification_value": p.quantification, "offset_source": p.offset_source,
                "resampling": "cubic spline (20/60 m bands onto the 10 m grid)",
                "cloud_mask": self.mask_kind, "cloud_masked_share": self.masked_share(),
                "warnings": list(self.warnings)}

    def close(self) -> None:
        """Close every band file opened."""
        for f in reversed(self._files):
            f.close()
        self._files = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cloud_mask_note(raster: ProductRaster, cloud_mask: bool) -> List[str]:
    """Why no cloud mask was applied, for the log and the summary; [] when one was."""
    if raster.mask_kind:
        return []
    if not cloud_mask:
        return ["--no-cloud-mask: clouds are classified as land use"]
    return ["the product has no cloud mask (L1C before baseline 04.00, or a folder without SCL/MSK_CLASSI): "
            "clouds are classified as land use"]
