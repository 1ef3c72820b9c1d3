"""A Sentinel-2 product as delivered -> its band files, level, radiometry and cloud mask.

``find_product`` recognises what ``map --input`` may be besides a raster:

- a ``.SAFE`` folder, its ``.zip`` (read in place through GDAL's /vsizip/: nothing is unpacked),
  or its ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``: the bands are the files named by their band
  token under ``GRANULE/*/IMG_DATA`` (L2A: the finest of ``R10m/ R20m/ R60m/``), the processing
  baseline, ``QUANTIFICATION_VALUE`` and the per-band ``RADIO_ADD_OFFSET`` (L1C) /
  ``BOA_ADD_OFFSET`` (L2A) come from the metadata (ESA's product specification,
  ``General_Info/Product_Image_Characteristics``), the cloud mask is L2A's ``SCL`` or, from
  baseline 04.00 on, L1C's ``QI_DATA/MSK_CLASSI_B00.jp2``;
- a folder of per-band files found by the band token in their names (``B01.jp2``,
  ``T32TMT_20230621T103629_B01.jp2``, ``..._B01_20m.jp2``; JPEG2000 or GeoTIFF), as the open-data
  buckets serve them: no metadata, so the offset is ``--dn-offset``'s (default 0, see below).

Own reader of the XML and the band files rather than GDAL's SENTINEL2 driver: the driver gives
one subdataset per resolution (so the 20/60 m bands still need resampling and restacking in
EuroSAT's order), neither applies the offsets nor reads bucket folders; the band files
themselves are read by GDAL's JPEG2000 driver. ``pipeline.mapping.bands`` turns a Product into
the model's bands on the 10 m grid.

Hostile input is refused with bounded memory: the metadata is read up to MAX_METADATA_BYTES and
refused when it declares entities (no entity expansion), a zip is refused above
MAX_PRODUCT_MEMBERS members or with a member that is encrypted, larger than MAX_BAND_FILE_BYTES or
packed more than MAX_COMPRESSION_RATIO to 1 (components/sources.py's member_problem, the one zip-member check;
JPEG2000 does not pack further, so a real product is ~1:1), and a folder is walked
MAX_PRODUCT_DEPTH levels deep and MAX_PRODUCT_MEMBERS files at most.
"""
from __future__ import annotations

import dataclasses
import os
import re
import xml.etree.ElementTree as ElementTree
import zipfile
from typing import IO, Callable, Dict, List, Optional, Tuple

from components.sources import member_problem
from pipeline.mapping.errors import MapError
from schema import modalities

MAX_METADATA_BYTES = 8 << 20  # an MTD_MSIL1C.xml is ~60 KB
MAX_PRODUCT_MEMBERS = 10_000  # a .SAFE holds ~100 files (older multi-granule ones ~1,000)
MAX_BAND_FILE_BYTES = 2 << 30  # a 10 m band's JPEG2000 is ~120 MB
MAX_PRODUCT_DEPTH = 8

# The band token of a file name: B01.jp2, <tile>_<time>_B8A.jp2, <tile>_<time>_B02_10m.jp2, SCL_20m.
_TOKEN = re.compile(r"(?:^|_)(B0[1-9]|B1[0-2]|B8A|SCL)(?:_(10|20|60)m)?\.(jp2|tiff?)$", re.IGNORECASE)
CLOUD_MASK_FILE = "MSK_CLASSI_B00.jp2"  # L1C from baseline 04.00: opaque clouds, cirrus, snow
# ESA's band_id in the metadata's offset lists: B1..B8, B8A, B9..B12 (B8A ninth, unlike EuroSAT)
ESA_BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
EUROSAT_QUANTIFICATION = 10_000.0  # EuroSAT's DNs: reflectance x 10,000, no offset
L2A_ABSENT = ("B10",)  # the cirrus band is not in L2A products (no surface reflectance for it)


@dataclasses.dataclass(frozen=True)
class Product:
    """What the map needs of a product: no pixels."""

    path: str  # as the user gave it
    level: Optional[str]  # "L1C", "L2A", or None (a folder of band files without metadata)
    baseline: Optional[str]  # the processing baseline, "05.09"; None without metadata
    band_files: Dict[str, str]  # band name -> a path GDAL opens (/vsizip/... inside a zip)
    offsets: Dict[str, float]  # band name -> the DN offset added before dividing by quantification
    quantification: float
    offset_source: str  # where the offsets come from: "MTD_MSIL1C.xml" or "--dn-offset"
    mask_file: Optional[str]  # SCL (L2A) or MSK_CLASSI_B00 (L1C >= 04.00), a path GDAL opens
    mask_kind: Optional[str]  # "SCL" or "MSK_CLASSI"

    def describe(self) -> str:
        """The product in a few words for messages: its level and baseline, or a folder of band files."""
        if self.level:
            return f"an {self.level} product of processing baseline {self.baseline}"
        return "a folder of band files"


def band_token(name: str) -> Optional[Tuple[str, Optional[int]]]:
    """(band, resolution in m or None) of a band file's name; None for any other file."""
    base = os.path.basename(name)
    if base.upper().startswith("MSK_"):  # QI_DATA's per-band masks (MSK_DETFOO_B01.jp2) are not bands
        return None
    match = _TOKEN.search(base)
    if not match:
        return None
    band = match.group(1).upper()
    return band, int(match.group(2)) if match.group(2) else None


def _list_zip(path: str) -> List[str]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise MapError(f"--input {path!r} is not a readable zip ({err}); give the product's .zip as downloaded "
                       "or the .SAFE folder it unpacks to") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_PRODUCT_MEMBERS:
            raise MapError(f"--input {path!r} holds {len(infos):,} files, more than the {MAX_PRODUCT_MEMBERS:,} of "
                           "a Sentinel-2 product: refused")
        for info in infos:
            problem = member_problem(info, MAX_BAND_FILE_BYTES, "one band file")
            if problem:
                raise MapError(f"--input {path!r}: member {info.filename!r} is refused: {problem}")
        return [i.filename for i in infos if not i.is_dir()]


def _list_folder(path: str) -> List[str]:
    names = []
    for name in _walk(path):
        names.append(name)
        if len(names) > MAX_PRODUCT_MEMBERS:
            raise MapError(f"--input {path!r} holds more than {MAX_PRODUCT_MEMBERS:,} files: not a Sentinel-2 "
                           "product; give its .SAFE folder, .zip or MTD_MSIL*.xml")
    return names


def _metadata_name(names: List[str]) -> Optional[str]:
    found = [n for n in names if re.fullmatch(r"MTD_MSIL(1C|2A)\.xml", os.path.basename(n), re.IGNORECASE)]
    return min(found, key=len) if found else None


def looks_like_product(path: str) -> bool:
    """Whether `path` is (cheaply) a product.

    A .SAFE folder, an MTD_MSIL*.xml, a zip holding one, or a folder with band files named by their band token.
    """
    if os.path.isfile(path) and re.fullmatch(r"MTD_MSIL(1C|2A)\.xml", os.path.basename(path), re.IGNORECASE):
        return True
    if os.path.isdir(path):
        if path.rstrip("/").upper().endswith(".SAFE"):
            return True
        for seen, name in enumerate(_walk(path)):  # a folder of patches may hold 100,000 files: stop early
            if band_token(name) or _metadata_name([name]):
                return True
            if seen >= MAX_PRODUCT_MEMBERS:
                return False
        return False
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return False
        return _metadata_name(names) is not None or any(band_token(n) for n in names)
    return False


def _walk(path: str):
    """The files under `path`, MAX_PRODUCT_DEPTH levels deep, hidden ones left out, lazily."""
    for folder, dirs, files in os.walk(path):
        depth = os.path.relpath(folder, path).count(os.sep)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < MAX_PRODUCT_DEPTH else []
        for f in sorted(files):
            if not f.startswith("."):
                yield os.path.relpath(os.path.join(folder, f), path)


def _read_metadata(opener, name: str, shown: str) -> ElementTree.Element:
    with opener(name) as handle:
        data = handle.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise MapError(f"{shown!r} is larger than {MAX_METADATA_BYTES:,} bytes: not a Sentinel-2 product's metadata")
    if b"<!ENTITY" in data or b"<!DOCTYPE" in data:
        raise MapError(f"{shown!r} declares XML entities, which Sentinel-2 metadata never does: refused")
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as err:
        raise MapError(f"{shown!r} is not readable XML ({err}); download the product again") from None


def _find(root: ElementTree.Element, tag: str) -> List[ElementTree.Element]:
    return [e for e in root.iter() if e.tag.split("}")[-1] == tag]


def _radiometry(root: ElementTree.Element, level: str, shown: str) -> Tuple[str, float, Dict[str, float]]:
    """(baseline, quantification value, offset per band) of the product's metadata."""
    baseline = next((e.text.strip() for e in _find(root, "PROCESSING_BASELINE") if e.text), None)
    quantification = _find(root, "QUANTIFICATION_VALUE" if level == "L1C" else "BOA_QUANTIFICATION_VALUE")
    quantification_text = quantification[0].text if quantification else None
    if not baseline or not quantification_text:
        raise MapError(f"{shown!r} lacks PROCESSING_BASELINE or the quantification value: not a Sentinel-2 "
                       f"{level} product's metadata; download the product again")
    offsets = {band: 0.0 for band in ESA_BAND_IDS}
    for element in _find(root, "RADIO_ADD_OFFSET" if level == "L1C" else "BOA_ADD_OFFSET"):
        band_id = int(element.get("band_id", "-1"))
        if not 0 <= band_id < len(ESA_BAND_IDS):
            raise MapError(f"{shown!r}: an offset of band_id {band_id}, not one of Sentinel-2's 13 bands")
        if element.text is None:
            raise MapError(f"{shown!r}: the offset of band_id {band_id} is empty; download the product again")
        offsets[ESA_BAND_IDS[band_id]] = float(element.text)
    if float(baseline) >= 4.0 and not any(offsets.values()):
        raise MapError(f"{shown!r} is of baseline {baseline} but gives no radiometric offsets (from 04.00 on "
                       "every product does): download the product again")
    return baseline, float(quantification_text), offsets


def find_product(path: str, dn_offset: float = 0.0) -> Product:
    """The Product at `path`; MapError when it is none or lacks what the map needs.

    The Product at `path` (a .SAFE folder, its .zip, its MTD_MSIL*.xml or a folder of band files); MapError when it
    is none or lacks what the map needs.
    """
    if os.path.isfile(path) and path.lower().endswith(".xml"):
        root_dir, names = os.path.dirname(os.path.abspath(path)), None
        names = _list_folder(root_dir)
        metadata: Optional[str] = os.path.basename(path)
    else:
        root_dir = os.path.abspath(path)
        names = _list_zip(path) if zipfile.is_zipfile(path) else _list_folder(path)
        metadata = _metadata_name(names)
    in_zip = zipfile.is_zipfile(path) if os.path.isfile(path) else False
    archive: Optional[zipfile.ZipFile]
    opener: Callable[[str], IO[bytes]]
    gdal_path: Callable[[str], str]
    if in_zip:
        archive = zipfile.ZipFile(path)
        opener, gdal_path = archive.open, (lambda n: f"/vsizip/{root_dir}/{n}")
    else:
        archive = None
        opener, gdal_path = (lambda n: open(os.path.join(root_dir, n), "rb")), (lambda n: os.path.join(root_dir, n))
    try:
        if metadata:
            shown = f"{path}!/{metadata}" if in_zip else os.path.join(path, metadata) if os.path.isdir(path) else path
            level = "L1C" if "1C" in os.path.basename(metadata).upper() else "L2A"
            baseline, quantification, offsets = _radiometry(_read_metadata(opener, metadata, shown), level, shown)
            source = os.path.basename(metadata)
            base = os.path.dirname(metadata)
            names = [n for n in names if n.startswith(base)]  # the product's own files
        else:
            level, baseline, quantification, source = None, None, EUROSAT_QUANTIFICATION, "--dn-offset"
            offsets = {band: float(dn_offset) for band in ESA_BAND_IDS}
        bands = _band_files(names, path)
        mask_kind, mask = None, None
        if "SCL" in bands:
            mask_kind, mask = "SCL", bands.pop("SCL")
        else:
            classi = [n for n in names if os.path.basename(n).upper() == CLOUD_MASK_FILE.upper()]
            if len(classi) == 1:
                mask_kind, mask = "MSK_CLASSI", classi[0]
        if not bands:
            raise MapError(f"--input {path!r} holds no Sentinel-2 band files (named like B02.jp2 or "
                           "T32TMT_20230621T103629_B02.jp2): give a .SAFE folder, its .zip, its MTD_MSIL*.xml "
                           "or a folder of band files")
        return Product(path, level, baseline, {b: gdal_path(n) for b, n in bands.items()}, offsets, quantification,
                       source, gdal_path(mask) if mask else None, mask_kind)
    finally:
        if archive is not None:
            archive.close()


def _band_files(names: List[str], shown: str) -> Dict[str, str]:
    """Each band -> the file holding it at its finest resolution (L2A has copies at 20 and 60 m)."""
    best: Dict[str, Tuple[int, str]] = {}
    for name in names:
        if "QI_DATA" in name.replace("\\", "/").split("/"):
            continue
        token = band_token(name)
        if token is None:
            continue
        band, resolution = token
        rank = resolution or 0
        if band in best and best[band][0] == rank:
            raise MapError(f"--input {shown!r} holds band {band} twice ({best[band][1]!r} and {name!r}): "
                           "give one tile (one granule, one date) at a time")
        if band not in best or rank < best[band][0]:
            best[band] = (rank, name)
    return {band: name for band, (_, name) in best.items()}


def bands_for_model(product: Product, modality: str) -> Tuple[Tuple[str, ...], List[str]]:
    """(the product's bands the model takes, in its order, warnings).

    MapError when the model cannot take this product (an L2A one for a 13-band model) or a band is missing.
    """
    record = modalities.get(modality)
    wanted = record.band_names
    warnings = []
    if product.level == "L2A":
        if any(b in L2A_ABSENT for b in wanted):
            raise MapError(f"--input {product.path!r} is an L2A product (surface reflectance, no B10) but the model "
                           f"is a {record.channels}-band model trained on EuroSAT's L1C (top-of-atmosphere) data; "
                           "give the L1C product of the same scene (S2*_MSIL1C_*), or use an RGB model")
        warnings.append("L2A product: surface reflectance, while EuroSAT is L1C top of atmosphere; the RGB map "
                        "may be biased (brighter greens, darker blues): prefer the L1C product of the scene")
    missing = [b for b in wanted if b not in product.band_files]
    if missing:
        raise MapError(f"--input {product.path!r} ({product.describe()}) lacks band{'s' * (len(missing) > 1)} "
                       f"{', '.join(missing)} that the model needs ({', '.join(wanted)}); download the whole "
                       "product again")
    return wanted, warnings
