"""A second Beam filesystem scheme for tests: ``mem://`` files held in this process's memory.

Beam finds FileSystem subclasses by their scheme once this module is imported, so anything
that reads through Beam's FileSystems (components/convert.py) reads ``mem://`` paths as it would
``gs://`` ones on Dataflow. Only what reading needs is implemented.
"""
from __future__ import annotations

import io
import posixpath
import time

from apache_beam.io.filesystem import BeamIOError, FileMetadata, FileSystem


class MemoryFileSystem(FileSystem):
    files: dict = {}  # path -> (bytes, last updated)

    @classmethod
    def scheme(cls):
        return "mem"

    @classmethod
    def put(cls, path: str, data: bytes) -> None:
        cls.files[path] = (data, time.time())

    @classmethod
    def clear(cls) -> None:
        cls.files.clear()

    def join(self, basepath, *paths):
        return posixpath.join(basepath, *paths)

    def split(self, path):
        return posixpath.split(path)

    def has_dirs(self):
        return False

    def mkdirs(self, path):
        pass

    def _list(self, dir_or_prefix):
        for path, (data, updated) in sorted(self.files.items()):
            if path.startswith(dir_or_prefix):
                yield FileMetadata(path, len(data), updated)

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        if path not in self.files:
            raise BeamIOError(f"no such file {path}")
        return io.BytesIO(self.files[path][0])

    def create(self, path, mime_type="application/octet-stream", compression_type=None):
        raise NotImplementedError("read-only in tests")

    def exists(self, path):
        return path in self.files

    def size(self, path):
        return len(self.files[path][0])

    def last_updated(self, path):
        return self.files[path][1]

    def checksum(self, path):
        return str(hash(self.files[path][0]))

    def metadata(self, path):
        return FileMetadata(path, self.size(path), self.last_updated(path))

    def copy(self, source_file_names, destination_file_names):
        raise NotImplementedError

    def rename(self, source_file_names, destination_file_names):
        raise NotImplementedError

    def delete(self, paths):
        for path in paths:
            self.files.pop(path, None)
