"""Convert a folder-per-class image set (a EuroSAT archive, zipped or unpacked) to TFRecords.

Two kinds of source, told apart once from the listing (source_modality()):

* the RGB archive (``EuroSAT_RGB/<ClassName>/*.jpg``): modality ``rgb``, encoded images;
* the all-bands archive (``EuroSAT_MS/<ClassName>/*.tif``, or
  ``ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<ClassName>/*.tif``): 13-band 16-bit
  GeoTIFFs, modality ``all``. A source is ``all`` when the first readable TIFF in its class
  folders has 13 bands; every other source is ``rgb``.

The output is the example contract of schema.features, so nothing downstream can tell converted
archives from synthetic data or TFDS. The conversion runs inside the ExampleGen
(components.example_gen applies convert_beam.ConvertImages; DirectRunner locally, the same code on
Dataflow) and is built from small pure functions that tests call directly:

* components.sources -- open_tree(), find_class_root(), list_source(), SourceReader: the listing
                         of a folder or zip and each file's bytes, bounded;
* scan_source()       -- the listing, its empty classes and its modality (decided once);
* build_report(), write_report() -- the conversion report and the --max-bad-fraction check;
* prepare_image()     -- validate one RGB file's bytes and bring them into the contract;
* prepare_bands()     -- the same for one 13-band GeoTIFF (features.read_bands).

What happens to bad input (every unusable file is listed, with its reason, in
``conversion_report.json`` in the Examples artifact, and the conversion fails when they are more
than ``max_bad_fraction`` of the files):

* corrupt/truncated image or GeoTIFF,         -> rejected ("cannot decode ...");
  non-image file
* file over MAX_FILE_BYTES, zip member with a  -> rejected without being read (bounded memory,
  compression ratio over MAX_COMPRESSION_RATIO   nothing unpacked to disk);
* image declaring more than MAX_IMAGE_PIXELS   -> rejected from its header, before decoding;
  (a decompression bomb), or a side under        Pillow's DecompressionBombError is reported
  MIN_IMAGE_SIDE (1x1)                           the same way, never raised;
* non-TIFF file in a class folder of a         -> rejected ("not a TIFF file"): a dataset holds
  13-band set                                    one modality;
* 13-band GeoTIFF with another band count,     -> rejected, with the reason from
  another size than 64x64, non-integer or        features.check_bands: 13-band patches are NOT
  out-of-range values                            resampled (that would change what a pixel
                                                 means; 10/20/60 m bands), unlike RGB images;
* unknown class folder (not a EuroSAT name)   -> its files are rejected ("unknown class");
  the label contract is EuroSAT's 10 classes, so nothing is silently added;
* same bytes twice in one class (13-band     -> the first path (sorted) is kept, the others are
  sets: same band values, tags may differ)      listed as duplicates (not counted as bad);
* same bytes (band values) in two classes     -> every copy is rejected (contradicting labels);
* RGB image not 64x64, grayscale, RGBA,       -> converted to 64x64 RGB (PIL, antialiased) and
  palette, or not JPEG/PNG                       re-encoded as lossless PNG, counted as "normalized";
                                                 64x64 RGB JPEG/PNG files are stored byte for byte;
* a EuroSAT class with no images              -> listed under "empty_classes" (a warning);
* no usable image at all                      -> the conversion fails.
Hidden files (``.DS_Store``, ``._*``) are ignored. The summary and the report record the modality.
"""
from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
from typing import List, Optional, Sequence, Tuple

from components.convert_beam import BAD_TAG
from components.prepare import (
    SourceFile,
    bad_fraction_error,
)
from components.sources import (
    IMAGE_EXTENSIONS,
    NOT_AN_IMAGE,
    TIFF_EXTENSIONS,
    ConversionError,
    SourceReader,
    Tree,
    classes_without_files,
    find_class_root,
    is_archive,
    list_source,
    open_tree,
)
from schema import features, modalities, records
from schema.locations import is_local

# The conversion is split at its seams: components.sources lists and reads a source, this module
# decides its modality and holds the entry points, components.prepare validates one file,
# components.convert_beam is the Beam pipeline.

log = logging.getLogger(__name__)

MODALITY_PROBES = 20  # unreadable TIFFs tried before a source is taken as RGB
DEFAULT_MAX_BAD_FRACTION = records.DEFAULT_MAX_BAD_FRACTION
REPORT_NAME = "conversion_report.json"
# 4: converted inside the ExampleGen. Part of the source identity: a changed conversion does not
# reuse old examples from TFX's cache.
CONVERTER_VERSION = "4"

def _tiff_band_count(data: bytes) -> Optional[int]:
    """How many bands a TIFF holds, from its header (1 for a one-band image), or None when it cannot be read."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            shape = tif.series[0].shape
    except Exception:  # tifffile raises many types for corrupt/non-TIFF files
        return None
    return min(shape[0], shape[-1]) if len(shape) == 3 else 1  # bands first or last


def source_modality(files: Sequence[SourceFile], reader: Optional[SourceReader] = None) -> str:
    """The modality of the first readable TIFF among the usable files, ``rgb`` when there is none.

    A 13-band TIFF makes it ``all`` (modalities.of_tiff_bands).

    Decided once per source, so every file is prepared the same way and a wrong file is reported
    against the set's modality rather than switching it.
    """
    reader = reader or SourceReader()
    probes = 0
    try:
        for f in files:
            if f.label is None or not f.source.lower().endswith(TIFF_EXTENSIONS):
                continue
            try:
                bands = _tiff_band_count(reader.read(f))
            except ValueError:
                bands = None
            if bands is not None:
                return modalities.of_tiff_bands(bands).name
            probes += 1
            if probes >= MODALITY_PROBES:
                break
    finally:
        reader.close()
    return modalities.RGB.name


def _usable_in(f: SourceFile, record: modalities.Modality) -> SourceFile:
    """A file of a set of `record`'s modality.

    A file of another kind in a class folder is unusable (a 13-band set is GeoTIFFs only; an RGB set takes every
    image format).
    """
    if f.source.lower().endswith(record.file_extensions) or (f.label is None and f.problem != NOT_AN_IMAGE):
        return f
    return dataclasses.replace(
        f, label=None, problem=f"not a TIFF file (extension): this is a {record.description} set of GeoTIFFs (*.tif)")


def scan_source(source) -> Tuple[List[SourceFile], List[str], str]:
    """The listing of a source (a Tree, or a folder / .zip location), its empty classes and its modality.

    Only files of the modality's kinds are usable (a 13-band set: TIFFs).
    """
    tree = source if isinstance(source, Tree) else open_tree(source)
    files, empty = list_source(tree)
    modality = source_modality(files)
    record = modalities.get(modality)
    if set(record.file_extensions) != set(IMAGE_EXTENSIONS):  # a set of fewer kinds (13 bands: TIFFs)
        files = [_usable_in(f, record) for f in files]
        empty = classes_without_files(files)
    return files, empty, modality


def build_report(root: str, scan: Tuple[List[SourceFile], List[str], str], records: dict,
                 max_bad_fraction: float) -> dict:
    """The conversion report of `root` (its listing `scan`, ConvertImages' records).

    A summary (source, modality, files, examples, bad, duplicates, normalized, empty classes), and every refused,
    duplicate and normalized file with its reason.
    """
    files, empty_classes, modality = scan
    listing_bad = [{"path": f.source, "reason": f.problem} for f in files if f.label is None]
    bad = sorted(listing_bad + records[BAD_TAG], key=lambda r: r["path"])
    num_usable = sum(f.label is not None for f in files)
    summary = {
        "source": os.path.abspath(root) if is_local(root) else root,
        "modality": modality,
        "files": len(files),
        "examples": num_usable - len(records[BAD_TAG]) - len(records["duplicate"]),
        "bad": len(bad),
        "duplicates": len(records["duplicate"]),
        "normalized": len(records["normalized"]),
        "empty_classes": list(empty_classes),
        "max_bad_fraction": max_bad_fraction,
    }
    return {"summary": summary, "bad": bad, "duplicates": records["duplicate"], "normalized": records["normalized"]}


def write_report(report: dict, report_path: str) -> None:
    """Write the report, log its summary, and raise ConversionError when too many files were refused or none was usable.

    Too many is more than the summary's max_bad_fraction. The report is written either way, so every refused file can be
    looked up.
    """
    import tensorflow as tf

    summary = report["summary"]
    with tf.io.gfile.GFile(report_path, "w") as f:
        json.dump(report, f, indent=1)
    log.info("conversion summary: %s", json.dumps(summary))
    if summary["empty_classes"]:
        log.warning("EuroSAT classes without images: %s", ", ".join(summary["empty_classes"]))
    error = bad_fraction_error(summary["bad"], summary["files"], summary["max_bad_fraction"], report_path)
    if error is None and summary["examples"] == 0:
        error = "no image could be used"
    if error:
        raise ConversionError(f"converting {summary['source']!r}: {error}")


def check_usable(root: str, files: Sequence[SourceFile]) -> None:
    """ConversionError when the listing holds no usable image at all (wrong folder, other classes)."""
    if not any(f.label is not None for f in files):
        raise ConversionError(
            f"{root!r} holds no usable images: expected <ClassName>/*.jpg (RGB) or <ClassName>/*.tif "
            "(13-band) folders with EuroSAT class "
            f"names ({', '.join(features.CLASS_NAMES)})"
            + (f"; found: {sorted({f.source.split('/')[0] for f in files})[:10]}" if files else ""))


def holds_class_folders(path: str) -> bool:
    """Whether `path` looks like a folder-per-class image set or an archive; used to dispatch --data.

    convert_source says when a .zip is not one.
    """
    if is_archive(path):
        return not is_local(path) or os.path.exists(path)
    if is_local(path) and not os.path.isdir(path):
        return False
    try:
        tree = open_tree(path)
    except ConversionError:
        return False
    prefix = find_class_root(tree)
    return any(e.name.startswith(prefix) and "/" in e.name[len(prefix):]
               and e.name.lower().endswith(IMAGE_EXTENSIONS) for e in tree.entries)
