"""What `--data` names, read without loading TensorFlow.

The kind of source, the modality the name itself says, and the source's identity, the ExampleGen's fingerprint of
it.

* ``synthetic[/rgb|/all][:N]``   -- generated inside the ExampleGen (schema.samples), seeded;
* ``tfds:eurosat/rgb|all``       -- tensorflow-datasets, read inside the ExampleGen;
* any other value is a path      -- a folder of TFRecords, or a folder / .zip of class folders of
  (local, gs://, any Beam            images (the EuroSAT archives); which of the two is decided where
  filesystem)                        the data is read, in the ExampleGen.

The identity (path, size and modification time of a file, a hash of a folder's listing, the
converter version, the split files' contents) is an execution property of the ExampleGen, so
TFX's cache reuses its examples while the source is unchanged and re-runs it when it changed.
Compiling for the cloud reads nothing: there the identity of a gs:// source is its path.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Dict, Iterator, List, Optional, Tuple

from schema import features, modalities
from schema.errors import DataError
from schema.locations import is_local

SYNTHETIC = "synthetic"
DEFAULT_SYNTHETIC_SIZE = 2000
TFDS_PREFIX = "tfds:"
# The kinds of source, by how --data names them ("path": read to tell records from images).
SYNTHETIC_KIND, TFDS_KIND, PATH_KIND = "synthetic", "tfds", "path"
# Part of every identity: a changed conversion (components.convert, components.example_gen)
# does not reuse examples made by an older one. 2: every example carries patch_mean.
INGEST_VERSION = "2"


# What one synthetic example weighs as a stored tf.Example (measured: 200 of each, TFRecord
# bytes / 200): the input size Beam's 'auto' running mode is chosen from for synthetic:N.
SYNTHETIC_BYTES_PER_EXAMPLE = {"rgb": 2_080, "all": 101_600}


def source_bytes(spec: str) -> Optional[int]:
    """The input's size in bytes.

    A local file or folder on disk (recursively), synthetic:N as N stored examples; None for what is not known
    without reading it (gs://, tfds:).
    """
    synthetic = parse_synthetic(spec)
    if synthetic is not None:
        count, modality = synthetic
        return count * SYNTHETIC_BYTES_PER_EXAMPLE[modality]
    if not is_local(spec) or spec.startswith(TFDS_PREFIX) or not os.path.exists(spec):
        return None
    if os.path.isfile(spec):
        return os.path.getsize(spec)
    return sum(st.st_size for _, st in _local_files(spec))


def parse_synthetic(spec: str) -> Optional[Tuple[int, str]]:
    """`synthetic[/rgb|/all][:N]` -> (N, modality); anything else -> None."""
    name, _, size = spec.partition(":")
    base, _, modality = name.partition("/")
    if base != SYNTHETIC:
        return None
    modality = modality or "rgb"
    if modality not in modalities.REGISTRY or (size and (not size.isdigit() or int(size) <= 0)):
        raise DataError(
            f"--data {spec!r}: expected synthetic:N (RGB) or synthetic/all:N (13 bands), "
            "N a positive number of images"
        )
    count = int(size) if size else DEFAULT_SYNTHETIC_SIZE
    if count < features.NUM_CLASSES:  # refused before any component runs, and in the ExampleGen
        raise DataError(f"synthetic:{count} is too small: ask for at least {features.NUM_CLASSES} "
                        "examples (one per class), e.g. synthetic:500.")
    return count, modality


def source_kind(spec: str) -> str:
    """synthetic, tfds or path (a malformed synthetic/tfds name is a DataError)."""
    from components.tfds_source import parse_tfds

    if parse_synthetic(spec) is not None:
        return SYNTHETIC_KIND
    if parse_tfds(spec) is not None:
        return TFDS_KIND
    return PATH_KIND


def spec_modality(spec: str) -> Optional[str]:
    """The modality the name itself says (synthetic/all, tfds:eurosat/all ...), None for a path."""
    from components.tfds_source import parse_tfds

    synthetic = parse_synthetic(spec)
    if synthetic is not None:
        return synthetic[1]
    tfds_name = parse_tfds(spec)
    if tfds_name is not None:
        return modalities.get(tfds_name.split("/")[1]).name
    return None


def absolute(spec: str) -> str:
    """A local path made absolute (what the ExampleGen reads does not depend on the cwd)."""
    if source_kind(spec) == PATH_KIND and is_local(spec):
        return os.path.abspath(spec)
    return spec


def _local_files(folder: str) -> Iterator[Tuple[str, os.stat_result]]:
    """(path, stat) of every file under a local folder, in a stable (sorted) order."""
    for dirpath, dirnames, names in os.walk(folder):
        dirnames.sort()
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            yield path, os.stat(path)


def _listing_hash(folder: str) -> Tuple[int, str]:
    """(files, sha256 of every file's relative path, size and modification time) of a local folder."""
    h = hashlib.sha256()
    count = 0
    for path, st in _local_files(folder):
        h.update(f"{os.path.relpath(path, folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        count += 1
    return count, h.hexdigest()


def path_identity(path: str) -> Dict[str, object]:
    """What identifies a local file or folder; a remote one (gs://) is its path.

    A local file is identified by its size and modification time, a folder by its listing's hash. A remote path is not
    read: nothing is read at compile time.
    """
    if not is_local(path):
        return {"path": path}
    if os.path.isdir(path):
        files, digest = _listing_hash(path)
        return {"path": path, "files": files, "listing_sha256": digest}
    if os.path.exists(path):
        st = os.stat(path)
        return {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return {"path": path}


def _split_files_identity(split_files: str) -> List[Dict[str, object]]:
    identity: List[Dict[str, object]] = []
    for path in (p.strip() for p in split_files.split(",") if p.strip()):
        if is_local(path) and os.path.isfile(path):
            with open(path, "rb") as f:
                identity.append({"path": os.path.abspath(path), "sha256": hashlib.sha256(f.read()).hexdigest()})
        else:
            identity.append({"path": path})
    return identity


def source_identity(spec: str, seed: int = 0, tfds_data_dir: str = "", split_files: str = "") -> str:
    """The ExampleGen's fingerprint of its source, as canonical JSON.

    What changes it re-runs the ExampleGen (a touched archive, another seed for synthetic data), what does not
    reuses its examples from TFX's cache.
    """
    kind = source_kind(spec)
    identity: Dict[str, object] = {"kind": kind, "source": absolute(spec), "ingest_version": INGEST_VERSION}
    if kind == SYNTHETIC_KIND:
        identity["seed"] = seed
    elif kind == TFDS_KIND:
        identity["tfds_data_dir"] = tfds_data_dir
        if tfds_data_dir:
            identity["prepared"] = path_identity(tfds_data_dir)
    else:
        from components.convert import CONVERTER_VERSION  # light: no TensorFlow at import

        identity["converter_version"] = CONVERTER_VERSION
        identity.update(path_identity(absolute(spec)))
    if split_files:
        identity["split_files"] = _split_files_identity(split_files)
    return json.dumps(identity, sort_keys=True)


RECORDS_CHECKED = 100  # records of each TFRecord file parsed before the examples are read


def holds_tfrecords(spec: str) -> bool:
    """A folder (any filesystem TensorFlow reads) holding TFRecord files."""
    import tensorflow as tf

    from schema.records import is_record_file

    return tf.io.gfile.isdir(spec) and any(is_record_file(f) for f in tf.io.gfile.listdir(spec))


def check_tfrecords(folder: str, records: int = RECORDS_CHECKED) -> None:
    """Read the first `records` records of every TFRecord file in `folder` and parse them as tf.Examples.

    A file is read as GZIP when its name ends in .gz. DataError names the first file that is not a TFRecord file of
    tf.Examples.
    """
    import tensorflow as tf

    from schema.records import is_record_file

    for name in sorted(tf.io.gfile.listdir(folder)):
        path = folder.rstrip("/") + "/" + name
        if not is_record_file(name) or tf.io.gfile.isdir(path):
            continue
        compression = "GZIP" if name.endswith(".gz") else ""
        try:
            for raw in tf.data.TFRecordDataset(path, compression_type=compression).take(records):
                tf.train.Example.FromString(raw.numpy())
        except (tf.errors.OpError, ValueError) as err:  # DataLossError, DecodeError
            detail = getattr(err, "message", str(err)).splitlines()[0]
            raise DataError(
                f"--data: {path!r} is not a file of tf.Example records ({type(err).__name__}: {detail}); "
                "remove it from the folder or rewrite it (schema/features.py make_example)"
            ) from None


def not_found(spec: str) -> str:
    """The one-line error for a --data that does not exist, listing the kinds of source it can be."""
    return (f"--data {spec!r} does not exist; give a folder of TFRecords, a folder or .zip of "
            "class folders of images (the EuroSAT RGB or all-bands archive), tfds:eurosat/rgb, "
            "tfds:eurosat/all, synthetic[:N] or synthetic/all[:N].")


def not_a_source(spec: str) -> str:
    """Why a path that exists is no source (or, when it does not exist, not_found)."""
    import tensorflow as tf

    from schema.records import RECORD_PATTERN

    if not tf.io.gfile.exists(spec):
        return not_found(spec)
    return (f"--data {spec!r} holds neither TFRecord files ({RECORD_PATTERN}) nor class folders of images "
            "(<ClassName>/*.jpg or *.tif, as in the EuroSAT archives); give one of those, "
            "tfds:eurosat/rgb, tfds:eurosat/all, synthetic[:N] or synthetic/all[:N].")
