"""The folder of a map: checked before the model loads, written whole or not at all.

A map is written into a new folder beside ``--output`` (``staged``; inside it when only it may be
written) and moved in when complete (``commit``), so a map that fails or is interrupted (Ctrl-C, a
full disk, a damaged scene) leaves an earlier map there as it was; ``summary.json``, moved in
last, marks a folder that holds one whole map (``--compare`` refuses one without).
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from typing import Iterator, Optional

from pipeline.mapping.errors import MapError
from pipeline.mapping.mosaic import MOSAIC_FILE
from pipeline.mapping.outputs import FILES
from schema.locations import is_local

COMPLETE = "summary.json"  # moved into --output last: a folder holding it holds one whole map
CHANGE_FILES = ("transitions.csv", "change.png")  # --compare's
MAP_FOLDER_FILES = FILES + CHANGE_FILES + (MOSAIC_FILE,)  # all a map writes: an earlier map's are replaced
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


def check_output_dir(output_dir: str) -> Optional[str]:
    """The folder to write a map in before it moves into `output_dir`.

    Its parent (the map is staged beside it), or output_dir itself when only it may be written (--output . in a
    read-only parent); None for gs:// (Beam's). MapError when `output_dir` cannot hold map files: a file, under a
    file, or in folders we may not write (checked before the model loads).
    """
    if not is_local(output_dir):
        return None
    path = os.path.abspath(output_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise MapError(f"--output {output_dir!r} is a file, not a folder: give a folder for the map files")
    existing = os.path.dirname(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise MapError(f"--output {output_dir!r} lies under {existing!r}, which is a file: give a folder")
    writable = os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)
    if os.path.isdir(path) and not writable:
        existing = path
    elif os.access(existing, os.W_OK | os.X_OK):
        return os.path.dirname(path)
    elif writable:
        return path
    raise MapError(f"--output {output_dir!r}: no permission to write in {existing!r}; give a folder you can write")


@contextlib.contextmanager
def staged(output_dir: str) -> Iterator[str]:
    """A new folder beside `output_dir` (or in it: check_output_dir) to write a map into.

    When the block ends without an error its files replace the map files in `output_dir` (``commit``); on an error,
    Ctrl-C or a full disk `output_dir` is as it was. The folder is removed either way.
    """
    parent = check_output_dir(output_dir)
    if parent is None:
        raise MapError(f"--output {output_dir!r}: a map made here is written to a local folder; give one, or map "
                       "with --beam, which writes gs:// folders")
    name = os.path.basename(os.path.abspath(output_dir))
    staging = os.path.join(parent, f".{name}.partial-{os.getpid()}-{secrets.token_hex(3)}")
    try:
        os.makedirs(parent, exist_ok=True)
        os.mkdir(staging)  # the umask's permissions (mkdtemp's would be 0700)
    except OSError as err:
        raise MapError(f"--output {output_dir!r}: cannot write there ({err.strerror}: {err.filename}); give a "
                       "folder you can write") from None
    try:
        yield staging
        commit(staging, output_dir)
    except OSError as err:
        if err.errno not in FULL_DISK:
            raise
        raise MapError(f"--output {output_dir!r}: the disk is full ({err.strerror}) while writing the map; free "
                       "some space or give a folder on another disk (an earlier map there is as it was)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def commit(staging: str, output_dir: str) -> None:
    """Move a finished map from `staging` into `output_dir`.

    One rename when output_dir is new; else file by file, its earlier summary.json removed first (and the earlier
    map's files this one lacks, say an old change.png) and the new one moved in last, so a folder with a
    summary.json never mixes two maps. Other files in output_dir are left alone.
    """
    if not os.path.lexists(output_dir):
        os.rename(staging, output_dir)
        return
    new = set(os.listdir(staging))
    for name in (COMPLETE, *(n for n in MAP_FOLDER_FILES if n not in new)):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(output_dir, name))
    for name in sorted(new - {COMPLETE}) + [COMPLETE]:
        os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
