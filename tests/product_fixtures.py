"""Sentinel-2 products in the real layout, written from a 13-band 10 m scene, for the product tests
and the map benchmark.

``write_product`` turns a 13-band GeoTIFF in EuroSAT's band order (schema.example_data.synthetic's
``write_synthetic_scene(..., ALL_BANDS)``) into what a user downloads:

- a ``.SAFE`` folder of an L1C or L2A product (``S2B_MSIL1C_<date>_N0509_R022_T32TMT_<date>.SAFE``),
  with ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml`` (processing baseline, quantification value, the
  per-band ``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET`` from baseline 04.00 on, the granule's image
  files), the granule's ``MTD_TL.xml`` (CRS, sizes and positions at 10/20/60 m) and one lossless
  JPEG2000 file per band under ``GRANULE/<id>/IMG_DATA`` (L2A: ``R10m/ R20m/ R60m/`` with
  ``_10m``-style names, no B10, the SCL); L1C from 04.00 on: ``QI_DATA/MSK_CLASSI_B00.jp2``;
- or a flat folder of band files (``B01.jp2`` ... as in the open-data buckets), without metadata.

Bands at 20/60 m are the 10 m scene averaged over 2x2 / 6x6 pixels (as the instrument's coarser
pixels integrate), read with out_shape so memory stays bounded; from baseline 04.00 on the DNs
carry +1000 (0 stays 0: no data). ``clouds`` (a bool array of the scene's patches) marks patches
as opaque cloud in the cloud mask (SCL 9 in L2A). The scene's side must be a multiple of 6 pixels
(a whole number of 60 m pixels, as a real tile: 10,980 px).
"""
from __future__ import annotations

import os
import zipfile
from typing import Dict, Optional

import numpy as np

from schema import features

RESOLUTION_M = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10,
                "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20}
ESA_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
TILE, DATE = "T32TMT", "20230621T103629"
SCL_VEGETATION, SCL_CLOUD_HIGH = 4, 9


def _band_index(name: str) -> int:  # 1-based, in the scene (EuroSAT's order)
    return features.BAND_NAMES.index(name) + 1


def _write_jp2(path: str, values_fn, width: int, height: int, count: int, profile: dict, rows_per_write: int):
    """A lossless JPEG2000 file (a GeoTIFF when `path` ends .tif) written through a temporary tiled
    GeoTIFF (JP2OpenJPEG creates by copy only), `values_fn(row0, rows)` giving [count, rows, width]."""
    import rasterio
    from rasterio.shutil import copy as gdal_copy
    from rasterio.windows import Window

    tmp = path if path.lower().endswith((".tif", ".tiff")) else path + ".tmp.tif"
    with rasterio.open(tmp, "w", driver="GTiff", width=width, height=height, count=count, tiled=True,
                       blockxsize=256, blockysize=256, **profile) as dst:
        for row0 in range(0, height, rows_per_write):
            rows = min(rows_per_write, height - row0)
            dst.write(values_fn(row0, rows), window=Window(0, row0, width, rows))
    if tmp == path:
        return
    gdal_copy(tmp, path, driver="JP2OpenJPEG", QUALITY="100", REVERSIBLE="YES", BLOCKXSIZE="1024",
              BLOCKYSIZE="1024")  # resolution levels as ESA's files: decimated reads (the preview) are cheap
    os.remove(tmp)
    aux = path + ".aux.xml"
    if os.path.exists(aux):
        os.remove(aux)


def write_band_file(scene_path: str, band: str, path: str, add: int = 0, resolution: Optional[int] = None) -> None:
    """One band of the scene at `resolution` m (default its own; the mean of the 10 m pixels), DN +
    `add` where not 0."""
    import rasterio
    from rasterio.windows import Window

    factor = (resolution or RESOLUTION_M[band]) // 10
    with rasterio.open(scene_path) as src:
        width, height = src.width // factor, src.height // factor
        transform = src.transform @ src.transform.scale(factor)
        profile = dict(dtype="uint16", crs=src.crs, transform=transform)

        def values(row0, rows):
            window = Window(0, row0 * factor, src.width, rows * factor)
            raw = src.read(_band_index(band), window=window).astype(np.float64)
            coarse = raw.reshape(rows, factor, width, factor).mean(axis=(1, 3)) if factor > 1 else raw
            # no data (0) where a 10 m pixel has no band: the product's border is whole pixels of 0
            empty = ~src.read(window=window).any(axis=0)
            empty = empty.reshape(rows, factor, width, factor).any(axis=(1, 3)) if factor > 1 else empty
            out = np.where(empty, 0, np.clip(np.rint(coarse), 1, 65535 - add) + add)  # a data DN is 1 at least
            return out.astype(np.uint16)[None]

        _write_jp2(path, values, width, height, 1, profile, rows_per_write=max(1, 600 // factor))


def _mask_file(scene_path: str, path: str, clouds: Optional[np.ndarray], resolution: int, count: int,
               value_fn) -> None:
    """A mask at `resolution` m: value_fn(cloudy [rows, w] bool, empty bool) -> [count, rows, w] uint8."""
    import rasterio
    from rasterio.windows import Window

    factor = resolution // 10
    with rasterio.open(scene_path) as src:
        width, height = src.width // factor, src.height // factor
        profile = dict(dtype="uint8", crs=src.crs, transform=src.transform @ src.transform.scale(factor))
        patch_m = features.IMAGE_SIZE  # pixels of 10 m a patch

        def values(row0, rows):
            r = (np.arange(row0, row0 + rows) * factor + factor // 2) // patch_m
            c = (np.arange(width) * factor + factor // 2) // patch_m
            cloudy = (np.zeros((rows, width), bool) if clouds is None else
                      np.asarray(clouds, bool)[np.minimum(r, clouds.shape[0] - 1)][:, np.minimum(c, clouds.shape[1] - 1)])
            raw = src.read(1, window=Window(0, row0 * factor, src.width, rows * factor))
            empty = (raw == 0).reshape(rows, factor, width, factor).all(axis=(1, 3))
            return value_fn(cloudy, empty)

        _write_jp2(path, values, width, height, count, profile, rows_per_write=max(1, 600 // factor))


def _special_values() -> str:
    return ("<Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>0"
            "</SPECIAL_VALUE_INDEX></Special_Values><Special_Values><SPECIAL_VALUE_TEXT>SATURATED"
            "</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>")


def _spectral_information() -> str:
    return "".join(f'<Spectral_Information bandId="{i}" physicalBand="{b.replace("B0", "B")}">'
                   f"<RESOLUTION>{RESOLUTION_M[b]}</RESOLUTION></Spectral_Information>"
                   for i, b in enumerate(ESA_ORDER))


def product_xml(level: str, baseline: str, image_files: list, offset: int) -> str:
    """MTD_MSIL1C.xml / MTD_MSIL2A.xml (the parts the map and GDAL's SENTINEL2 driver read)."""
    l1c = level == "L1C"
    root = "Level-1C_User_Product" if l1c else "Level-2A_User_Product"
    xsd = "User_Product_Level-1C.xsd" if l1c else "User_Product_Level-2A.xsd"
    files = "".join(f"<IMAGE_FILE>{f}</IMAGE_FILE>" for f in image_files)
    granule = os.path.dirname(os.path.dirname(image_files[0])) if l1c else os.path.dirname(
        os.path.dirname(os.path.dirname(image_files[0])))
    with_offset = float(baseline) >= 4.0
    if l1c:
        quantification = '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
        offsets = ("<Radiometric_Offset_List>" + "".join(
            f'<RADIO_ADD_OFFSET band_id="{i}">{offset}</RADIO_ADD_OFFSET>' for i in range(13))
            + "</Radiometric_Offset_List>") if with_offset else ""
    else:
        quantification = ('<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit="none">10000'
                          '</BOA_QUANTIFICATION_VALUE><AOT_QUANTIFICATION_VALUE unit="none">1000.0'
                          '</AOT_QUANTIFICATION_VALUE><WVP_QUANTIFICATION_VALUE unit="cm">1000.0'
                          "</WVP_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>")
        offsets = ("<BOA_ADD_OFFSET_VALUES_LIST>" + "".join(
            f'<BOA_ADD_OFFSET band_id="{i}">{offset}</BOA_ADD_OFFSET>' for i in range(13))
            + "</BOA_ADD_OFFSET_VALUES_LIST>") if with_offset else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:{root} xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/{xsd}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<n1:General_Info>
<Product_Info>
<PRODUCT_START_TIME>2023-06-21T10:36:29.024Z</PRODUCT_START_TIME>
<PRODUCT_STOP_TIME>2023-06-21T10:36:29.024Z</PRODUCT_STOP_TIME>
<PRODUCT_URI>{_safe_name(level, baseline)}</PRODUCT_URI>
<PROCESSING_LEVEL>Level-{level[1:]}</PROCESSING_LEVEL>
<PRODUCT_TYPE>S2MSI{level[1:]}</PRODUCT_TYPE>
<PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
<GENERATION_TIME>2023-06-21T13:04:11.000000Z</GENERATION_TIME>
<Datatake datatakeIdentifier="GS2B_20230621T103629_032812_N{baseline.replace('.', '')}">
<SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>
<DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>
<DATATAKE_SENSING_START>2023-06-21T10:36:29.024Z</DATATAKE_SENSING_START>
<SENSING_ORBIT_NUMBER>22</SENSING_ORBIT_NUMBER>
<SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION>
</Datatake>
<Query_Options completeSingleTile="true"><PRODUCT_FORMAT>SAFE_COMPACT</PRODUCT_FORMAT></Query_Options>
<Product_Organisation>
<Granule_List>
<Granule datastripIdentifier="S2B_OPER_MSI_L{level[1:]}_DS_2BPS_20230621T130411_S20230621T103629_N{baseline}" granuleIdentifier="{os.path.basename(granule)}" imageFormat="JPEG2000">
{files}
</Granule>
</Granule_List>
</Product_Organisation>
</Product_Info>
<Product_Image_Characteristics>
{_special_values()}
<Image_Display_Order><RED_CHANNEL>3</RED_CHANNEL><GREEN_CHANNEL>2</GREEN_CHANNEL><BLUE_CHANNEL>1</BLUE_CHANNEL></Image_Display_Order>
{quantification}
{offsets}
<Reflectance_Conversion><U>0.96916</U></Reflectance_Conversion>
<Spectral_Information_List>{_spectral_information()}</Spectral_Information_List>
<PHYSICAL_GAINS bandId="0">1</PHYSICAL_GAINS>
<REFERENCE_BAND>B1</REFERENCE_BAND>
</Product_Image_Characteristics>
</n1:General_Info>
</n1:{root}>
"""


def tile_xml(level: str, crs, transform, width: int, height: int) -> str:
    """The granule's MTD_TL.xml: its CRS and each resolution's size and upper-left corner."""
    root = "Level-1C_Tile_ID" if level == "L1C" else "Level-2A_Tile_ID"
    sizes = "".join(f'<Size resolution="{r}"><NROWS>{height * 10 // r}</NROWS><NCOLS>{width * 10 // r}</NCOLS></Size>'
                    for r in (10, 20, 60))
    positions = "".join(f'<Geoposition resolution="{r}"><ULX>{transform.c:.0f}</ULX><ULY>{transform.f:.0f}</ULY>'
                        f"<XDIM>{r}</XDIM><YDIM>-{r}</YDIM></Geoposition>" for r in (10, 20, 60))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:{root} xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-{level[1:]}_Tile_Metadata.xsd">
<n1:General_Info><TILE_ID metadataLevel="Brief">S2B_OPER_MSI_L{level[1:]}_TL_2BPS_20230621T130411_A032812_{TILE}_N05.09</TILE_ID>
<SENSING_TIME metadataLevel="Standard">2023-06-21T10:47:12.553Z</SENSING_TIME></n1:General_Info>
<n1:Geometric_Info><Tile_Geocoding metadataLevel="Brief">
<HORIZONTAL_CS_NAME>WGS84 / UTM zone 32N</HORIZONTAL_CS_NAME>
<HORIZONTAL_CS_CODE>{crs.to_string()}</HORIZONTAL_CS_CODE>
{sizes}{positions}
</Tile_Geocoding></n1:Geometric_Info>
</n1:{root}>
"""


def _safe_name(level: str, baseline: str) -> str:
    return f"S2B_MSI{level}_{DATE}_N{baseline.replace('.', '')}_R008_{TILE}_20230621T130411.SAFE"


def write_product(scene_path: str, destination: str, level: str = "L1C", baseline: str = "05.09",
                  clouds: Optional[np.ndarray] = None, with_cloud_mask: bool = True) -> str:
    """A .SAFE product of the 13-band scene in `destination`; returns the .SAFE folder's path.
    From baseline 04.00 on the DNs carry +1000 and the metadata says -1000."""
    import rasterio

    with rasterio.open(scene_path) as src:
        crs, transform, width, height = src.crs, src.transform, src.width, src.height
    if width % 6 or height % 6:
        raise ValueError(f"the scene is {width}x{height} px: give a multiple of 6 (whole 60 m pixels)")
    offset = -1000 if float(baseline) >= 4.0 else 0
    safe = os.path.join(destination, _safe_name(level, baseline))
    granule_id = f"{level}_{TILE}_A032812_{DATE}"
    granule = os.path.join(safe, "GRANULE", granule_id)
    image_files = []
    if level == "L1C":
        os.makedirs(os.path.join(granule, "IMG_DATA"))
        for band in ESA_ORDER:
            rel = f"GRANULE/{granule_id}/IMG_DATA/{TILE}_{DATE}_{band}"
            write_band_file(scene_path, band, os.path.join(safe, rel + ".jp2"), -offset)
            image_files.append(rel)
        if offset and with_cloud_mask:  # MSK_CLASSI_B00 from baseline 04.00 on: opaque, cirrus, snow
            os.makedirs(os.path.join(granule, "QI_DATA"))
            _mask_file(scene_path, os.path.join(granule, "QI_DATA", "MSK_CLASSI_B00.jp2"), clouds, 60, 3,
                       lambda cloudy, empty: np.stack([cloudy, np.zeros_like(cloudy), np.zeros_like(cloudy)])
                       .astype(np.uint8))
    else:  # L2A: R10m the 10 m bands, R20m those of 20 m or finer, R60m all (no B08, no B10); the SCL
        for res in (10, 20, 60):
            os.makedirs(os.path.join(granule, "IMG_DATA", f"R{res}m"))
            for band in (b for b in ESA_ORDER if b != "B10" and RESOLUTION_M[b] <= res
                         and not (res == 60 and b == "B08")):
                rel = f"GRANULE/{granule_id}/IMG_DATA/R{res}m/{TILE}_{DATE}_{band}_{res}m"
                write_band_file(scene_path, band, os.path.join(safe, rel + ".jp2"), -offset, res)
                image_files.append(rel)
            if res in (20, 60) and with_cloud_mask:
                rel = f"GRANULE/{granule_id}/IMG_DATA/R{res}m/{TILE}_{DATE}_SCL_{res}m"
                _mask_file(scene_path, os.path.join(safe, rel + ".jp2"), clouds, res, 1,
                           lambda cloudy, empty: np.where(empty, 0, np.where(cloudy, SCL_CLOUD_HIGH,
                                                                              SCL_VEGETATION))[None].astype(np.uint8))
                image_files.append(rel)
    with open(os.path.join(safe, f"MTD_MSI{level}.xml"), "w") as f:
        f.write(product_xml(level, baseline, image_files, offset))
    with open(os.path.join(granule, "MTD_TL.xml"), "w") as f:
        f.write(tile_xml(level, crs, transform, width, height))
    with open(os.path.join(safe, "manifest.safe"), "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"/>\n')
    return safe


def write_band_folder(scene_path: str, folder: str, name: str = "{band}.jp2", add: int = 0,
                      bands=ESA_ORDER) -> Dict[str, str]:
    """A folder of per-band files without metadata (`name` with {band}: B01.jp2, T32TMT_..._B01.jp2)."""
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for band in bands:
        paths[band] = os.path.join(folder, name.format(band=band))
        write_band_file(scene_path, band, paths[band], add)
    return paths


def zip_product(safe: str, destination: str) -> str:
    """The .SAFE folder zipped as delivered (<name>.SAFE/... inside <name>.zip, members stored)."""
    archive = os.path.join(destination, os.path.basename(safe)[: -len(".SAFE")] + ".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for folder, _, files in os.walk(safe):
            for f in sorted(files):
                full = os.path.join(folder, f)
                zf.write(full, os.path.relpath(full, os.path.dirname(safe)))
    return archive


def tile_scene(source: str, destination: str, size: int, rows_per_write: int = 512) -> str:
    """A size x size px scene repeating `source` (whose height is a multiple of rows_per_write) in
    both directions: a full 10,980 px tile from a few thousand synthetic patches, in strips."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(source) as src:
        if src.height % rows_per_write:
            raise ValueError(f"{source}: height {src.height} is not a multiple of {rows_per_write}")
        profile = {**src.profile, "width": size, "height": size}
        with rasterio.open(destination, "w", **profile) as dst:
            for row0 in range(0, size, rows_per_write):
                rows = min(rows_per_write, size - row0)
                strip = src.read(window=Window(0, row0 % src.height, src.width, rows))
                repeats = -(-size // src.width)
                dst.write(np.tile(strip, (1, 1, repeats))[:, :, :size], window=Window(0, row0, size, rows))
    return destination
