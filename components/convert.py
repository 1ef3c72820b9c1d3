"""Convert a folder-per-class image set (a EuroSAT archive, zipped or unpacked) to TFRecords.

Two kinds of source, told apart once from the listing (source_modality()):

* the RGB archive (``EuroSAT_RGB/<ClassName>/*.jpg``): modality ``rgb``, encoded images;
* the all-bands archive (``EuroSAT_MS/<ClassName>/*.tif``, or
  ``ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<ClassName>/*.tif``): 13-band 16-bit
  GeoTIFFs, modality ``all``. A source is ``all`` when the first readable TIFF in its class
  folders has 13 bands; every other source is ``rgb``.

The output is the example contract of schema.features, so ExampleGen cannot tell converted
archives from synthetic data or TFDS. The conversion is a Beam pipeline (DirectRunner locally, the
same code on Dataflow) built from small pure functions that tests call directly:

* open_tree()         -- the listing of a folder on any Beam filesystem (local, gs://, ...) or of
                         a zip archive (its directory: nothing is unpacked);
* find_class_root()   -- the folder level that holds the class folders (``EuroSAT_RGB/2750/``);
* list_source()       -- every file, with its EuroSAT label, or why it cannot be used;
* SourceReader        -- a file's bytes (Beam FileSystems, or the zip member read in place),
                         at most MAX_FILE_BYTES;
* scan_source()       -- the listing, its empty classes and its modality (decided once);
* source_fingerprint()-- a hash of the listing: the output folder is keyed by it, so a second
                         run reuses a complete conversion instead of duplicating examples;
* prepare_image()     -- validate one RGB file's bytes and bring them into the contract;
* prepare_bands()     -- the same for one 13-band GeoTIFF (features.read_bands).

What happens to bad input (every unusable file is listed, with its reason, in
``conversion_report.json`` next to the TFRecords, and the conversion fails when they are more
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
import hashlib
import io
import json
import logging
import os
import posixpath
import zipfile
import zlib
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from components.convert_beam import BAD_TAG, RECORD_PREFIX, run_conversion
from components.prepare import (
    MAX_IMAGE_PIXELS,
    MIN_IMAGE_SIDE,
    STORED_AS_IS,
    Prepared,
    SourceFile,
    bad_fraction_error,
    check_declared_size,
    prepare_bands,
    prepare_image,
    to_example,
)
from schema import features, modalities, records
from schema.errors import DataError

# The conversion is split at its seams: this module lists and reads sources (and holds the
# entry points), components.prepare validates one file, components.convert_beam is the Beam pipeline.
__all__ = [
    "BAD_TAG", "MAX_IMAGE_PIXELS", "MIN_IMAGE_SIDE", "RECORD_PREFIX", "STORED_AS_IS", "Prepared", "SourceFile",
    "bad_fraction_error", "check_declared_size", "prepare_bands", "prepare_image", "run_conversion", "to_example",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = modalities.RGB.file_extensions
TIFF_EXTENSIONS = modalities.ALL_BANDS.file_extensions
NOT_AN_IMAGE = "not an image file (extension)"
MODALITY_PROBES = 20  # unreadable TIFFs tried before a source is taken as RGB
DEFAULT_MAX_BAD_FRACTION = records.DEFAULT_MAX_BAD_FRACTION
REPORT_NAME = "conversion_report.json"
COMPLETE_MARKER = records.COMPLETE_MARKER
# 3: zips read in place, size bounds. Part of the fingerprint: a changed conversion does not reuse old output.
CONVERTER_VERSION = "3"
# Hostile input is refused with bounded memory and no disk: a file (or zip member) is read whole
# only up to MAX_FILE_BYTES (a EuroSAT JPEG is ~3 KB, a 13-band GeoTIFF ~107 KB); a zip member
# above RATIO_FLOOR_BYTES that unpacks to more than MAX_COMPRESSION_RATIO times its packed size
# (a bomb: zeros pack ~1000:1) is not read at all; an image's declared size is checked before
# its pixels are decoded.
MAX_FILE_BYTES = 64 << 20
MAX_COMPRESSION_RATIO = 100
RATIO_FLOOR_BYTES = 1 << 20

_CLASS_BY_FOLDED_NAME = {n.lower(): n for n in features.CLASS_NAMES}


class ConversionError(DataError):
    """The source cannot be converted; the message says what and how to fix it."""


def eurosat_class(folder_name: str) -> Optional[str]:
    """The EuroSAT class a folder name means (case-insensitive), or None."""
    return _CLASS_BY_FOLDED_NAME.get(folder_name.lower())


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("_")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One file of a source tree: its path relative to the tree's top ('/'-separated)."""

    name: str
    size: int
    stamp: str
    problem: Optional[str] = None  # known unusable from the listing alone (too large, a bomb)


@dataclasses.dataclass(frozen=True)
class Tree:
    """Every file of a source: a folder on any Beam filesystem (local, gs://, ...) or a zip
    archive, whose members are listed from its directory and read in place."""

    location: str
    archive: bool
    entries: Tuple[Entry, ...]

    def path(self, name: str) -> str:
        """Where SourceFile.path points: the file itself, or the member name in the archive."""
        return name if self.archive else self.location.rstrip("/") + "/" + name


def is_local(location: str) -> bool:
    return "://" not in location


def _beam_filesystems():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _open_binary(path: str):
    from apache_beam.io.filesystem import CompressionTypes

    return _beam_filesystems().open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def is_archive(location: str) -> bool:
    """Named .zip, or a local zip file by its content."""
    return location.lower().endswith(".zip") or (is_local(location) and zipfile.is_zipfile(location))


def _too_large(size: int) -> Optional[str]:
    if size > MAX_FILE_BYTES:
        return f"file of {size:,} bytes, larger than the {MAX_FILE_BYTES:,}-byte limit for one image"
    return None


def member_problem(info: zipfile.ZipInfo) -> Optional[str]:
    """Why a zip member must not be read (declared size or compression ratio), or None."""
    if info.flag_bits & 0x1:
        return "encrypted zip member"
    too_large = _too_large(info.file_size)
    if too_large:
        return f"zip member: {too_large}"
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(1, info.compress_size):
        return (f"zip member unpacks {info.compress_size:,} bytes to {info.file_size:,} "
                f"(ratio above {MAX_COMPRESSION_RATIO}): refused as a decompression bomb")
    return None


def open_zip(location: str) -> zipfile.ZipFile:
    """The archive at `location` (any Beam filesystem), or ConversionError naming it."""
    try:
        handle = _open_binary(location)
    except Exception as err:  # Beam raises BeamIOError/OSError by filesystem
        raise ConversionError(f"cannot open {location!r}: {err}") from None
    try:
        return zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        handle.close()
        raise ConversionError(
            f"{location!r} is not a readable zip archive ({err}); give the archive as downloaded "
            "(EuroSAT.zip / EuroSATallBands.zip), or the folder it unpacks to") from None


def _zip_tree(location: str) -> Tree:
    with open_zip(location) as zf:
        entries = tuple(
            Entry(info.filename, info.file_size, f"{info.CRC:08x}", member_problem(info))
            for info in sorted(zf.infolist(), key=lambda i: i.filename) if not info.is_dir())
    return Tree(location, True, entries)


def _folder_tree(location: str) -> Tree:
    top = location.rstrip("/")
    if is_local(top) and not os.path.isdir(top):
        raise ConversionError(f"{location!r} is not a folder (or .zip) of images")
    try:
        found = _beam_filesystems().match([top + "/**"])[0].metadata_list
    except Exception as err:  # BeamIOError: the listing itself failed
        raise ConversionError(f"cannot list {location!r}: {err}") from None
    entries = []
    for meta in found:
        name = meta.path[len(top) + 1:].replace(os.sep, "/")
        entries.append(Entry(name, meta.size_in_bytes, repr(meta.last_updated_in_seconds),
                             _too_large(meta.size_in_bytes)))
    return Tree(location, False, tuple(sorted(entries, key=lambda e: e.name)))


def open_tree(location: str) -> Tree:
    """The listing of a source folder or zip archive (nothing is read or unpacked)."""
    return _zip_tree(location) if is_archive(location) else _folder_tree(location)


def _visible(name: str) -> bool:
    """Not a hidden file (``.DS_Store``, ``._x``) nor under a hidden folder (``__MACOSX/``)."""
    *folders, base = name.split("/")
    return not base.startswith(".") and not any(_is_hidden(f) for f in folders)


def _subfolders(tree: Tree, prefix: str) -> List[str]:
    """The visible folder names directly under `prefix` ('' or 'a/b/')."""
    names = set()
    for e in tree.entries:
        if e.name.startswith(prefix) and _visible(e.name):
            rest = e.name[len(prefix):].split("/")
            if len(rest) > 1:
                names.add(rest[0])
    return sorted(names)


def find_class_root(tree: Tree, max_depth: int = 8) -> str:
    """The folder (a prefix of the tree, '' or 'EuroSAT_RGB/2750/') that holds the class folders:
    the first one, walking down from the top, that has a subfolder named like a EuroSAT class
    (``EuroSAT_RGB/2750`` in the RGB archive, six levels down in the all-bands archive's
    ``ds/images/...``). A set with other class names is used from the top (its folders are then
    reported as unknown classes)."""
    level = [""]
    for _ in range(max_depth + 1):
        for prefix in level:
            if any(eurosat_class(n) for n in _subfolders(tree, prefix)):
                return prefix
        level = [f"{p}{n}/" for p in level for n in _subfolders(tree, p)]
        if not level:
            break
    return ""


def list_source(tree: Tree, class_root: Optional[str] = None) -> Tuple[List[SourceFile], List[str]]:
    """Every visible file under the class folders (of `class_root`, found when not given),
    sorted, with its label or its problem; and the EuroSAT classes that have no file at all."""
    prefix = find_class_root(tree) if class_root is None else class_root
    files: List[SourceFile] = []
    archive = tree.location if tree.archive else None
    for e in tree.entries:
        if not e.name.startswith(prefix) or not _visible(e.name[len(prefix):]):
            continue
        source = e.name[len(prefix):]
        folder, _, rest = source.partition("/")
        name = eurosat_class(folder)
        if not rest:
            if not source.lower().endswith(IMAGE_EXTENSIONS):
                continue  # a README or licence beside the class folders
            label, problem = None, "image outside a class folder"
        elif name is None:
            label, problem = None, (f"unknown class folder {folder!r}: EuroSAT classes are "
                                    f"{', '.join(features.CLASS_NAMES)}")
        elif not source.lower().endswith(IMAGE_EXTENSIONS):
            label, problem = None, NOT_AN_IMAGE
        elif e.problem:
            label, problem = None, e.problem
        else:
            label, problem = features.class_id(name), None
        files.append(SourceFile(tree.path(e.name), source, label, problem, archive, e.size, e.stamp))
    files.sort(key=lambda f: (f.source.count("/") == 0, f.source))  # class folders first, as listed before
    return files, classes_without_files(files)


class SourceReader:
    """Reads a source file's bytes, never more than MAX_FILE_BYTES: files through Beam's
    FileSystems (local, gs://, ...) and zip members in place. Archives opened once are kept
    open for the next file (a Beam worker reads thousands from one zip)."""

    def __init__(self) -> None:
        self._archives: Dict[str, zipfile.ZipFile] = {}

    def read(self, f: SourceFile) -> bytes:
        """The file's bytes; ValueError saying why they cannot be read."""
        if f.problem:
            raise ValueError(f.problem)
        try:
            if f.archive is None:
                with _open_binary(f.path) as handle:
                    data = handle.read(MAX_FILE_BYTES + 1)
            else:
                zf = self._archives.get(f.archive) or self._archives.setdefault(f.archive, open_zip(f.archive))
                info = zf.getinfo(f.path)
                problem = member_problem(info)
                if problem:
                    raise ValueError(problem)
                with zf.open(info) as handle:
                    data = handle.read(MAX_FILE_BYTES + 1)
        except ValueError:
            raise
        except (OSError, EOFError, KeyError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
                zlib.error) as err:
            raise ValueError(f"cannot read file: {type(err).__name__}: {err}") from None
        too_large = _too_large(len(data))
        if too_large:
            raise ValueError(too_large)
        return data

    def close(self) -> None:
        for zf in self._archives.values():
            zf.close()
        self._archives.clear()


def _tiff_has_13_bands(data: bytes) -> Optional[bool]:
    """Whether a TIFF holds 13 bands (from its header), or None when it cannot be read."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            shape = tif.series[0].shape
    except Exception:  # tifffile raises many types for corrupt/non-TIFF files
        return None
    return len(shape) == 3 and features.NUM_BANDS in (shape[0], shape[-1])


def source_modality(files: Sequence[SourceFile], reader: Optional[SourceReader] = None) -> str:
    """``all`` when the first readable TIFF among the usable files has 13 bands, else ``rgb``.

    Decided once per source, so every file is prepared the same way and a wrong file is reported
    against the set's modality rather than switching it."""
    reader = reader or SourceReader()
    probes = 0
    try:
        for f in files:
            if f.label is None or not f.source.lower().endswith(TIFF_EXTENSIONS):
                continue
            try:
                has_13 = _tiff_has_13_bands(reader.read(f))
            except ValueError:
                has_13 = None
            if has_13 is not None:
                return features.ALL_BANDS if has_13 else features.RGB
            probes += 1
            if probes >= MODALITY_PROBES:
                break
    finally:
        reader.close()
    return features.RGB


def _only_tiff(f: SourceFile) -> SourceFile:
    """A file of a 13-band set: anything but a TIFF in a class folder is unusable."""
    if f.source.lower().endswith(TIFF_EXTENSIONS) or (f.label is None and f.problem != NOT_AN_IMAGE):
        return f
    return dataclasses.replace(f, label=None,
                               problem="not a TIFF file (extension): this is a 13-band set of GeoTIFFs (*.tif)")


def classes_without_files(files: Sequence[SourceFile]) -> List[str]:
    """The EuroSAT classes without a usable file."""
    used = {f.label for f in files if f.label is not None}
    return [n for i, n in enumerate(features.CLASS_NAMES) if i not in used]


def scan_source(source) -> Tuple[List[SourceFile], List[str], str]:
    """The listing of a source (a Tree, or a folder / .zip location), its empty classes and its
    modality; in a 13-band set only TIFFs are usable."""
    tree = source if isinstance(source, Tree) else open_tree(source)
    files, empty = list_source(tree)
    modality = source_modality(files)
    if modality == features.ALL_BANDS:
        files = [_only_tiff(f) for f in files]
        empty = classes_without_files(files)
    return files, empty, modality


def source_fingerprint(files: Sequence[SourceFile]) -> str:
    """A short hash of the listing (relative paths, sizes, modification times or zip CRCs) and
    converter version: the same source gives the same output folder, a changed one a new folder."""
    h = hashlib.sha256(CONVERTER_VERSION.encode())
    for f in files:
        h.update(f"{f.source}\0{f.size}\0{f.stamp}\n".encode())
    return h.hexdigest()[:12]


def convert_folder(
    root: str,
    output_dir: str,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
    beam_args: Optional[List[str]] = None,
    scan: Optional[Tuple[List[SourceFile], List[str], str]] = None,
) -> dict:
    """Convert `root`, a folder or .zip on any Beam filesystem (or its scan_source() result,
    when already computed) into `output_dir`: TFRecords, report, marker.

    Returns the summary. Raises ConversionError when nothing is usable or too much is bad; the
    report is written either way so that every rejected file can be looked up.
    """
    import tensorflow as tf

    files, empty_classes, modality = scan or scan_source(root)
    if not any(f.label is not None for f in files):
        raise ConversionError(
            f"{root!r} holds no usable images: expected <ClassName>/*.jpg (RGB) or <ClassName>/*.tif "
            "(13-band) folders with EuroSAT class "
            f"names ({', '.join(features.CLASS_NAMES)})"
            + (f"; found: {sorted({f.source.split('/')[0] for f in files})[:10]}" if files else ""))
    if tf.io.gfile.exists(output_dir):
        tf.io.gfile.rmtree(output_dir)  # an incomplete earlier attempt: start clean, never append
    tf.io.gfile.makedirs(output_dir)
    num_usable = sum(f.label is not None for f in files)
    num_shards = max(1, min(16, num_usable // 2000))
    log.info("converting %d files (%s) from %s into %s (%d shards)", len(files), modality, root,
             output_dir, num_shards)
    records = run_conversion(files, output_dir, num_shards, beam_args, modality, SourceReader)
    listing_bad = [{"path": f.source, "reason": f.problem} for f in files if f.label is None]
    bad = sorted(listing_bad + records[BAD_TAG], key=lambda r: r["path"])
    report_path = posixpath.join(output_dir, REPORT_NAME)
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
    with tf.io.gfile.GFile(report_path, "w") as f:
        json.dump({"summary": summary, "bad": bad, "duplicates": records["duplicate"],
                   "normalized": records["normalized"]}, f, indent=1)
    log.info("conversion summary: %s", json.dumps(summary))
    if empty_classes:
        log.warning("EuroSAT classes without images: %s", ", ".join(empty_classes))
    error = bad_fraction_error(len(bad), len(files), max_bad_fraction, report_path)
    if error is None and summary["examples"] == 0:
        error = "no image could be used"
    if error:
        raise ConversionError(f"converting {root!r}: {error}")
    with tf.io.gfile.GFile(posixpath.join(output_dir, COMPLETE_MARKER), "w") as f:
        json.dump(summary, f)
    return summary


def is_complete(output_dir: str) -> bool:
    import tensorflow as tf

    return tf.io.gfile.exists(posixpath.join(output_dir, COMPLETE_MARKER))


def convert_source(
    spec: str,
    cache_dir: str,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
    beam_args: Optional[List[str]] = None,
) -> str:
    """A folder or .zip of class folders (any Beam filesystem: local, gs://, ...) ->
    <cache_dir>/<name>-<fingerprint>/ of TFRecords, converted on first use and reused afterwards
    (same listing, same folder). A zip is read in place: nothing is unpacked."""
    root = spec.rstrip("/")
    scan = scan_source(root)
    name = posixpath.basename(os.path.splitext(root)[0]) or "images"
    output_dir = posixpath.join(cache_dir, f"{name}-{source_fingerprint(scan[0])}")
    if is_local(output_dir):
        output_dir = os.path.abspath(output_dir)
    if is_complete(output_dir):
        log.info("reusing converted %s (fingerprint matches): %s", spec, output_dir)
        return output_dir
    convert_folder(root, output_dir, max_bad_fraction, beam_args, scan=scan)
    return output_dir


def holds_class_folders(path: str) -> bool:
    """Whether `path` looks like a folder-per-class image set or an archive (convert_source says
    when a .zip is not one): used to dispatch --data."""
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


def iter_examples(folder: str) -> Iterable:
    """The tf.Examples of a converted folder (for tests and inspection)."""
    import tensorflow as tf

    pattern = os.path.join(folder, f"{RECORD_PREFIX}*.tfrecord.gz")
    for raw in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern), compression_type="GZIP"):
        yield tf.train.Example.FromString(raw.numpy())
