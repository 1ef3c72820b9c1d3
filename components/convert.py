"""Convert a folder-per-class image set (a EuroSAT archive, zipped or unpacked) to TFRecords.

Two kinds of source, told apart once from the listing (source_modality()):

* the RGB archive (``EuroSAT_RGB/<ClassName>/*.jpg``): modality ``rgb``, encoded images;
* the all-bands archive (``EuroSAT_MS/<ClassName>/*.tif``, or
  ``ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<ClassName>/*.tif``): 13-band 16-bit
  GeoTIFFs, modality ``all``. A source is ``all`` when the first readable TIFF in its class
  folders has 13 bands; every other source is ``rgb``.

The output is the example contract of components.features, so ExampleGen cannot tell converted
archives from synthetic data or TFDS. The conversion is a Beam pipeline (DirectRunner locally, the
same code on Dataflow) built from small pure functions that tests call directly:

* find_class_root()   -- the folder level that holds the class folders (``EuroSAT_RGB/2750/``);
* list_source()       -- every file, with its EuroSAT label, or why it cannot be used;
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

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import dataclasses  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import zipfile  # noqa: E402
from typing import Dict, Iterable, List, Optional, Sequence, Tuple  # noqa: E402

from components import features  # noqa: E402
from components.errors import DataError  # noqa: E402

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
TIFF_EXTENSIONS = (".tif", ".tiff")
NOT_AN_IMAGE = "not an image file (extension)"
MODALITY_PROBES = 20  # unreadable TIFFs tried before a source is taken as RGB
STORED_AS_IS = ("JPEG", "PNG")  # formats the contract's decoder reads; others are re-encoded
DEFAULT_MAX_BAD_FRACTION = 0.01
REPORT_NAME = "conversion_report.json"
COMPLETE_MARKER = "_COMPLETE"
RECORD_PREFIX = "eurosat"
CONVERTER_VERSION = "2"  # 2: 13-band sources, modality in the summary. Part of the fingerprint: a changed conversion does not reuse old output

_CLASS_BY_FOLDED_NAME = {n.lower(): n for n in features.CLASS_NAMES}


class ConversionError(DataError):
    """The source cannot be converted; the message says what and how to fix it."""


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One file of the source: `source` is its path relative to the class root (Forest/Forest_1.jpg)."""

    path: str
    source: str
    label: Optional[int]  # None: cannot be used, see `problem`
    problem: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A usable file: the bytes to store (the encoded image for rgb, the uint16 [64, 64, 13] band
    array's bytes for all), their hash (duplicates are found on it) and whether they were
    normalized (and why)."""

    image: bytes
    sha256: str
    normalized: Optional[str] = None


def eurosat_class(folder_name: str) -> Optional[str]:
    """The EuroSAT class a folder name means (case-insensitive), or None."""
    return _CLASS_BY_FOLDED_NAME.get(folder_name.lower())


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("_")


def _subfolders(folder: str) -> List[str]:
    return sorted(
        n for n in os.listdir(folder) if not _is_hidden(n) and os.path.isdir(os.path.join(folder, n))
    )


def find_class_root(root: str, max_depth: int = 8) -> str:
    """The folder that holds the class folders: the first one, walking down from `root`, that has
    a subfolder named like a EuroSAT class (``EuroSAT_RGB/2750`` in the RGB archive, six levels
    down in the all-bands archive's ``ds/images/...``). A set with other class names is used
    from `root` (its folders are then reported as unknown classes)."""
    if not os.path.isdir(root):
        raise ConversionError(f"{root!r} is not a folder (or .zip) of images")
    level = [root]
    for _ in range(max_depth + 1):
        for folder in level:
            if any(eurosat_class(n) for n in _subfolders(folder)):
                return folder
        level = [os.path.join(f, n) for f in level for n in _subfolders(f)]
        if not level:
            break
    return root


def list_source(class_root: str) -> Tuple[List[SourceFile], List[str]]:
    """Every non-hidden file under the class folders, sorted, with its label or its problem;
    and the EuroSAT classes that have no file at all."""
    files: List[SourceFile] = []
    for folder in _subfolders(class_root):
        name = eurosat_class(folder)
        for dirpath, dirnames, filenames in os.walk(os.path.join(class_root, folder)):
            dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
            for fn in sorted(f for f in filenames if not f.startswith(".")):
                path = os.path.join(dirpath, fn)
                source = os.path.relpath(path, class_root).replace(os.sep, "/")
                if name is None:
                    problem = (f"unknown class folder {folder!r}: EuroSAT classes are "
                               f"{', '.join(features.CLASS_NAMES)}")
                    files.append(SourceFile(path, source, None, problem))
                elif not fn.lower().endswith(IMAGE_EXTENSIONS):
                    files.append(SourceFile(path, source, None, NOT_AN_IMAGE))
                else:
                    files.append(SourceFile(path, source, features.class_id(name)))
    for fn in sorted(os.listdir(class_root)):
        path = os.path.join(class_root, fn)
        if os.path.isfile(path) and fn.lower().endswith(IMAGE_EXTENSIONS):
            files.append(SourceFile(path, fn, None, "image outside a class folder"))
    return files, classes_without_files(files)


def _tiff_has_13_bands(path: str) -> Optional[bool]:
    """Whether a TIFF holds 13 bands (from its header), or None when it cannot be read."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            shape = tif.series[0].shape
    except Exception:  # tifffile raises many types for corrupt/non-TIFF files
        return None
    return len(shape) == 3 and features.NUM_BANDS in (shape[0], shape[-1])


def source_modality(files: Sequence[SourceFile]) -> str:
    """``all`` when the first readable TIFF among the usable files has 13 bands, else ``rgb``.

    Decided once per source, so every file is prepared the same way and a wrong file is reported
    against the set's modality rather than switching it."""
    probes = 0
    for f in files:
        if f.label is None or not f.path.lower().endswith(TIFF_EXTENSIONS):
            continue
        has_13 = _tiff_has_13_bands(f.path)
        if has_13 is not None:
            return features.ALL_BANDS if has_13 else features.RGB
        probes += 1
        if probes >= MODALITY_PROBES:
            break
    return features.RGB


def _only_tiff(f: SourceFile) -> SourceFile:
    """A file of a 13-band set: anything but a TIFF in a class folder is unusable."""
    if f.path.lower().endswith(TIFF_EXTENSIONS) or (f.label is None and f.problem != NOT_AN_IMAGE):
        return f
    return SourceFile(f.path, f.source, None,
                      "not a TIFF file (extension): this is a 13-band set of GeoTIFFs (*.tif)")


def classes_without_files(files: Sequence[SourceFile]) -> List[str]:
    """The EuroSAT classes without a usable file."""
    used = {f.label for f in files if f.label is not None}
    return [n for i, n in enumerate(features.CLASS_NAMES) if i not in used]


def scan_source(class_root: str) -> Tuple[List[SourceFile], List[str], str]:
    """The listing, its empty classes and its modality; in a 13-band set only TIFFs are usable."""
    files, empty = list_source(class_root)
    modality = source_modality(files)
    if modality == features.ALL_BANDS:
        files = [_only_tiff(f) for f in files]
        empty = classes_without_files(files)
    return files, empty, modality


def source_fingerprint(files: Sequence[SourceFile]) -> str:
    """A short hash of the listing (relative paths, sizes, modification times) and converter
    version: the same source gives the same output folder, a changed one a new folder."""
    h = hashlib.sha256(CONVERTER_VERSION.encode())
    for f in files:
        st = os.stat(f.path)
        h.update(f"{f.source}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def prepare_bands(data: bytes) -> Prepared:
    """Validate one 13-band GeoTIFF's bytes (features.read_bands: ValueError says why not); the
    stored bytes are the uint16 band values, so duplicates are found on the pixels, not the tags."""
    try:
        bands = features.read_bands(data)
    except ValueError as err:
        message = str(err)
        if not message.startswith("cannot decode"):
            message = f"unusable 13-band GeoTIFF: {message}"
        raise ValueError(message) from None
    raw = bands.tobytes()
    return Prepared(raw, hashlib.sha256(raw).hexdigest())


def to_example(stored: bytes, label: int, source: str, modality: str):
    """The contract tf.Example of one prepared file (Prepared.image) in `modality`."""
    if modality == features.RGB:
        return features.make_example(stored, label, source)
    import numpy as np

    bands = np.frombuffer(stored, dtype=np.uint16).reshape(features.BANDS_SHAPE)
    return features.make_bands_example(bands, label, source)


def prepare_image(data: bytes, image_size: int = features.IMAGE_SIZE) -> Prepared:
    """Validate one file's bytes; 64x64 RGB JPEG/PNG are kept as they are, anything else that
    decodes is converted to 64x64 RGB PNG. Raises ValueError saying why a file is unusable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # full decode: catches truncated and corrupt files
            fmt, mode, size = img.format, img.mode, img.size
            reasons = []
            if size != (image_size, image_size):
                reasons.append(f"size {size[0]}x{size[1]} resized to {image_size}x{image_size}")
            if mode != "RGB":
                reasons.append(f"mode {mode} converted to RGB")
            if fmt not in STORED_AS_IS:
                reasons.append(f"{fmt} re-encoded as PNG")
            if reasons:
                rgb = img.convert("RGB")
                if size != (image_size, image_size):
                    rgb = rgb.resize((image_size, image_size), Image.Resampling.LANCZOS)
                buf = io.BytesIO()
                rgb.save(buf, format="PNG")
                data = buf.getvalue()
    except UnidentifiedImageError:
        raise ValueError("cannot decode image: not a recognised image format") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot decode image: {err}") from None
    _check_contract_decode(data)
    return Prepared(data, hashlib.sha256(data).hexdigest(), "; ".join(reasons) or None)


_decode_fn = None


def _check_contract_decode(data: bytes) -> None:
    """The stored bytes must decode with the contract's decoder (what Transform and serving use).

    Traced once per process: calling the decoder eagerly costs as much as the rest of the check."""
    global _decode_fn
    import tensorflow as tf

    if _decode_fn is None:
        _decode_fn = tf.function(features.decode_image, input_signature=[tf.TensorSpec([], tf.string)])
    try:
        _decode_fn(tf.constant(data))
    except tf.errors.InvalidArgumentError as err:
        raise ValueError(f"TensorFlow cannot decode image: {err.message.splitlines()[0]}") from None


def bad_fraction_error(num_bad: int, num_files: int, max_bad_fraction: float, report: str) -> Optional[str]:
    """The error message when too many files are unusable, else None."""
    if num_files == 0:
        return "the source holds no files"
    if num_bad / num_files > max_bad_fraction:
        return (f"{num_bad} of {num_files} files ({num_bad / num_files:.1%}) cannot be used, more than "
                f"--max-bad-fraction {max_bad_fraction:g}; see {report} for each file and reason, fix "
                "or remove them, or raise --max-bad-fraction")
    return None


# ---------------------------------------------------------------------------------------------
# The Beam pipeline
# ---------------------------------------------------------------------------------------------
BAD_TAG = "bad"


def _read_and_prepare(item: Tuple[str, str, int], modality: str):
    """(path, source, label) -> ('ok', (sha, (source, label, bytes, normalized))) or a bad record."""
    import apache_beam as beam
    from apache_beam.metrics import Metrics

    path, source, label = item
    try:
        with open(path, "rb") as f:
            data = f.read()
        prepared = prepare_image(data) if modality == features.RGB else prepare_bands(data)
    except (OSError, ValueError) as err:
        Metrics.counter("convert", "bad").inc()
        yield beam.pvalue.TaggedOutput(BAD_TAG, {"path": source, "reason": str(err)})
        return
    Metrics.counter("convert", "read").inc()
    if prepared.normalized:
        Metrics.counter("convert", "normalized").inc()
    yield prepared.sha256, (source, label, prepared.image, prepared.normalized)


def _resolve_duplicates(keyed, modality: str):
    """Group of identical bytes -> the one example to keep (first path), plus report records."""
    import apache_beam as beam
    from apache_beam.metrics import Metrics

    _, copies = keyed
    copies = sorted(copies)
    labels = {label for _, label, _, _ in copies}
    if len(labels) > 1:
        names = ", ".join(f"{s} ({features.class_name(lbl)})" for s, lbl, _, _ in copies)
        for source, _, _, _ in copies:
            Metrics.counter("convert", "bad").inc()
            yield beam.pvalue.TaggedOutput(
                BAD_TAG, {"path": source, "reason": f"same {_what(modality)} in different classes: {names}"})
        return
    first = copies[0]
    for source, _, _, _ in copies[1:]:
        Metrics.counter("convert", "duplicate").inc()
        yield beam.pvalue.TaggedOutput(
            "duplicate", {"path": source, "reason": f"duplicate of {first[0]} (same {_same(modality)})"})
    if first[3]:
        yield beam.pvalue.TaggedOutput("normalized", {"path": first[0], "reason": first[3]})
    Metrics.counter("convert", "written").inc()
    yield to_example(first[2], first[1], first[0], modality).SerializeToString()


def _what(modality: str) -> str:
    return "image" if modality == features.RGB else "band values"


def _same(modality: str) -> str:
    """What duplicates share: the stored bytes (rgb) or the decoded pixels (all, tags may differ)."""
    return "bytes" if modality == features.RGB else "band values"


class _LogProgress:
    """A log line every `every` elements per worker: progress on long conversions."""

    def __init__(self, every: int = 1000):
        self.every, self.seen = every, 0

    def __call__(self, element):
        self.seen += 1
        if self.seen % self.every == 0:
            log.info("converted %d images (this worker)", self.seen)
        return element


def run_conversion(
    files: Sequence[SourceFile],
    output_dir: str,
    num_shards: int,
    beam_args: Optional[List[str]] = None,
    modality: str = features.RGB,
) -> Dict[str, List[dict]]:
    """The Beam pipeline: read + validate + normalize every usable file, drop duplicates, write
    sharded TFRecords to `output_dir`; returns the report records by kind (bad, duplicate,
    normalized)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    usable = [(f.path, f.source, f.label) for f in files if f.label is not None]
    parts = os.path.join(output_dir, "_report_parts")
    kinds = (BAD_TAG, "duplicate", "normalized")
    options = PipelineOptions(beam_args or ["--direct_running_mode=in_memory"])
    p = beam.Pipeline(options=options)
    prepared = (
        p
        | "ListFiles" >> beam.Create(usable, reshuffle=True)
        | "ReadAndValidate" >> beam.FlatMap(_read_and_prepare, modality).with_outputs(BAD_TAG, main="ok")
    )
    examples = (
        prepared.ok
        | "Progress" >> beam.Map(_LogProgress())
        | "GroupIdenticalBytes" >> beam.GroupByKey()
        | "DropDuplicates" >> beam.FlatMap(_resolve_duplicates, modality).with_outputs(
            BAD_TAG, "duplicate", "normalized", main="examples")
    )
    _ = examples.examples | "WriteTFRecords" >> beam.io.WriteToTFRecord(
        os.path.join(output_dir, RECORD_PREFIX), file_name_suffix=".tfrecord.gz",
        num_shards=num_shards)
    bad = (prepared[BAD_TAG], examples[BAD_TAG]) | "AllBad" >> beam.Flatten()
    for kind, pcoll in ((BAD_TAG, bad), ("duplicate", examples.duplicate),
                        ("normalized", examples.normalized)):
        _ = (pcoll | f"Json{kind}" >> beam.Map(json.dumps)
             | f"Write{kind}" >> beam.io.WriteToText(os.path.join(parts, kind), shard_name_template=""))
    result = p.run()
    result.wait_until_finish()
    counters: Dict[str, int] = {}
    for c in result.metrics().query()["counters"]:  # summed over steps ("bad" comes from two)
        counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + c.result
    log.info("conversion counters: %s", json.dumps(counters, sort_keys=True))
    records = {}
    for kind in kinds:
        with open(os.path.join(parts, kind)) as f:
            records[kind] = sorted((json.loads(line) for line in f if line.strip()), key=lambda r: r["path"])
    shutil.rmtree(parts)
    return records


def convert_folder(
    root: str,
    output_dir: str,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
    beam_args: Optional[List[str]] = None,
    scan: Optional[Tuple[List[SourceFile], List[str], str]] = None,
) -> dict:
    """Convert `root` (or its scan_source() result, when already computed) into `output_dir`: TFRecords, report, marker.

    Returns the summary. Raises ConversionError when nothing is usable or too much is bad; the
    report is written either way so that every rejected file can be looked up.
    """
    files, empty_classes, modality = scan or scan_source(find_class_root(root))
    if not any(f.label is not None for f in files):
        raise ConversionError(
            f"{root!r} holds no usable images: expected <ClassName>/*.jpg (RGB) or <ClassName>/*.tif "
            "(13-band) folders with EuroSAT class "
            f"names ({', '.join(features.CLASS_NAMES)})"
            + (f"; found: {sorted({f.source.split('/')[0] for f in files})[:10]}" if files else ""))
    if os.path.exists(output_dir):
        shutil.rmtree(output_dir)  # an incomplete earlier attempt: start clean, never append
    os.makedirs(output_dir)
    num_usable = sum(f.label is not None for f in files)
    num_shards = max(1, min(16, num_usable // 2000))
    log.info("converting %d files (%s) from %s into %s (%d shards)", len(files), modality, root,
             output_dir, num_shards)
    records = run_conversion(files, output_dir, num_shards, beam_args, modality)
    listing_bad = [{"path": f.source, "reason": f.problem} for f in files if f.label is None]
    bad = sorted(listing_bad + records[BAD_TAG], key=lambda r: r["path"])
    report_path = os.path.join(output_dir, REPORT_NAME)
    summary = {
        "source": os.path.abspath(root),
        "modality": modality,
        "files": len(files),
        "examples": num_usable - len(records[BAD_TAG]) - len(records["duplicate"]),
        "bad": len(bad),
        "duplicates": len(records["duplicate"]),
        "normalized": len(records["normalized"]),
        "empty_classes": list(empty_classes),
        "max_bad_fraction": max_bad_fraction,
    }
    with open(report_path, "w") as f:
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
    with open(os.path.join(output_dir, COMPLETE_MARKER), "w") as f:
        json.dump(summary, f)
    return summary


def unpack_zip(zip_path: str, cache_dir: str) -> str:
    """Extract an archive once into `cache_dir` (keyed by its member names, sizes and CRCs)."""
    with zipfile.ZipFile(zip_path) as zf:
        h = hashlib.sha256()
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            h.update(f"{info.filename}\0{info.file_size}\0{info.CRC}\n".encode())
        name = os.path.splitext(os.path.basename(zip_path))[0]
        target = os.path.join(cache_dir, "_unpacked", f"{name}-{h.hexdigest()[:12]}")
        if not os.path.exists(os.path.join(target, COMPLETE_MARKER)):
            shutil.rmtree(target, ignore_errors=True)
            log.info("unpacking %s into %s", zip_path, target)
            zf.extractall(target)
            open(os.path.join(target, COMPLETE_MARKER), "w").close()
    return target


def is_complete(output_dir: str) -> bool:
    return os.path.exists(os.path.join(output_dir, COMPLETE_MARKER))


def convert_source(
    spec: str,
    cache_dir: str,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
    beam_args: Optional[List[str]] = None,
) -> str:
    """A folder or .zip of class folders -> <cache_dir>/<name>-<fingerprint>/ of TFRecords,
    converted on first use and reused afterwards (same listing, same folder)."""
    root = spec.rstrip("/")
    if zipfile.is_zipfile(root):
        root = unpack_zip(root, cache_dir)
    scan = scan_source(find_class_root(root))
    name = os.path.basename(os.path.splitext(spec.rstrip("/"))[0]) or "images"
    output_dir = os.path.join(cache_dir, f"{name}-{source_fingerprint(scan[0])}")
    if is_complete(output_dir):
        log.info("reusing converted %s (fingerprint matches): %s", spec, output_dir)
        return os.path.abspath(output_dir)
    convert_folder(root, output_dir, max_bad_fraction, beam_args, scan=scan)
    return os.path.abspath(output_dir)


def holds_class_folders(path: str) -> bool:
    """Whether `path` looks like a folder-per-class image set (or a zip): used to dispatch --data."""
    if os.path.isfile(path):
        return zipfile.is_zipfile(path)
    if not os.path.isdir(path):
        return False
    root = find_class_root(path)
    return any(
        f.lower().endswith(IMAGE_EXTENSIONS)
        for d in _subfolders(root)
        for f in os.listdir(os.path.join(root, d))
    )


def iter_examples(folder: str) -> Iterable:
    """The tf.Examples of a converted folder (for tests and inspection)."""
    import tensorflow as tf

    pattern = os.path.join(folder, f"{RECORD_PREFIX}*.tfrecord.gz")
    for raw in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern), compression_type="GZIP"):
        yield tf.train.Example.FromString(raw.numpy())
