"""The files of an image source: a folder-per-class tree on any Beam filesystem, or a zip read in place.

* open_tree()         -- the listing of a folder (local, gs://, ...) or of a zip archive's
                         directory (nothing is unpacked);
* find_class_root()   -- the folder level that holds the class folders (``EuroSAT_RGB/2750/``);
* list_source()       -- every file, with its EuroSAT label, or why it cannot be used;
* SourceReader        -- a file's bytes (Beam FileSystems, or the zip member read in place), at
                         most MAX_FILE_BYTES; a zip member that would unpack too far is not read.

components.convert decides the modality and runs the conversion over these listings.
"""
from __future__ import annotations

import dataclasses
import os
import zipfile
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

from components.prepare import SourceFile
from schema import features, modalities
from schema.errors import DataError
from schema.locations import is_local

IMAGE_EXTENSIONS = modalities.RGB.file_extensions
TIFF_EXTENSIONS = modalities.ALL_BANDS.file_extensions
NOT_AN_IMAGE = "not an image file (extension)"

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
    """Every file of a source.

    A folder on any Beam filesystem (local, gs://, ...) or a zip archive, whose members are listed from its
    directory and read in place.
    """

    location: str
    archive: bool
    entries: Tuple[Entry, ...]

    def path(self, name: str) -> str:
        """Where SourceFile.path points: the file itself, or the member name in the archive."""
        return name if self.archive else self.location.rstrip("/") + "/" + name


def _beam_filesystems():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _open_binary(path: str):
    from apache_beam.io.filesystem import CompressionTypes

    return _beam_filesystems().open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def is_archive(location: str) -> bool:
    """Named .zip, or a local zip file by its content."""
    return location.lower().endswith(".zip") or (is_local(location) and zipfile.is_zipfile(location))


def _too_large(size: int, max_bytes: Optional[int] = None, what: str = "one image") -> Optional[str]:
    max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes  # read at call time, as the bound is set
    if size > max_bytes:
        return f"file of {size:,} bytes, larger than the {max_bytes:,}-byte limit for {what}"
    return None


def member_problem(info: zipfile.ZipInfo, max_bytes: Optional[int] = None, what: str = "one image") -> Optional[str]:
    """Why a zip member must not be read, or None.

    A member is refused when it is encrypted, when its declared size is over `max_bytes` (None: MAX_FILE_BYTES), or for
    its compression ratio. The map's Sentinel-2 product zips use it too, with their band files' bound.
    """
    if info.flag_bits & 0x1:
        return "encrypted zip member"
    too_large = _too_large(info.file_size, max_bytes, what)
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
    """The folder (a prefix of the tree, '' or 'EuroSAT_RGB/2750/') that holds the class folders.

    The first one, walking down from the top, that has a subfolder named like a EuroSAT class (``EuroSAT_RGB/2750``
    in the RGB archive, six levels down in the all-bands archive's ``ds/images/...``). A set with other class names
    is used from the top (its folders are then reported as unknown classes).
    """
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
    """Every visible file under the class folders with its label or its problem, and the empty classes.

    The class folders are those of `class_root`, found when not given; the files come sorted. The empty classes are the
    EuroSAT classes that have no file at all.
    """
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
    """Reads a source file's bytes, never more than MAX_FILE_BYTES.

    Files through Beam's FileSystems (local, gs://, ...) and zip members in place. Archives opened once are kept
    open for the next file (a Beam worker reads thousands from one zip).
    """

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
        """Close the archives opened so far."""
        for zf in self._archives.values():
            zf.close()
        self._archives.clear()


def classes_without_files(files: Sequence[SourceFile]) -> List[str]:
    """The EuroSAT classes without a usable file."""
    used = {f.label for f in files if f.label is not None}
    return [n for i, n in enumerate(features.CLASS_NAMES) if i not in used]
