"""What the dev server serves.

Which versions of a model (TF Serving's version policies and its model config file), each version loaded with its
signatures and warmed up, reloaded as the Pusher's directory changes.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

import grpc
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from schema.locations import is_local
from serving import contract
from serving.status import status_error

log = logging.getLogger("serving.server")  # one logger for the dev server's modules


def versions_to_serve(policy: model_server_config_pb2.ModelConfig, available: Iterable[int]) -> Set[int]:
    """The versions a ModelConfig's model_version_policy asks for among those on disk.

    The policies are TF Serving's latest / all / specific; no policy means latest 1.
    """
    available = sorted(available)
    kind = policy.model_version_policy.WhichOneof("policy_choice")
    if kind == "all":
        return set(available)
    if kind == "specific":
        return set(policy.model_version_policy.specific.versions) & set(available)
    count = policy.model_version_policy.latest.num_versions if kind == "latest" else 1
    return set(available[-max(1, count):]) if available else set()


# A version folder's name: ASCII digits of an int64 (TF Serving's version type); "²" and "٣" are
# digits to str.isdigit() but no version.
VERSION_NAME = re.compile(r"[0-9]{1,18}")


def complete_versions(base_path: str, ignored: Optional[Set[str]] = None) -> Dict[int, str]:
    """Version number -> directory for the versions that are fully written (saved_model.pb exists).

    Entries that are not versions are skipped, each logged once when `ignored` (the names already logged) is given.
    """
    if not tf.io.gfile.isdir(base_path):
        return {}
    found = {}
    for name in tf.io.gfile.listdir(base_path):
        name = name.rstrip("/")
        path = os.path.join(base_path, name)
        if not VERSION_NAME.fullmatch(name):
            if ignored is not None and name not in ignored:
                ignored.add(name)
                log.warning("ignoring %r in %s: not a version (a version is a folder named by a number)",
                            name, base_path)
        elif tf.io.gfile.exists(os.path.join(path, contract.SAVED_MODEL_FILE)):
            found[int(name)] = path
    return found


def directory_stamp(path: str) -> Tuple[Tuple[str, int, int], ...]:
    """Every file under `path` with its size and modification time: changes when any file does."""
    stamp = []
    for folder, _, files in tf.io.gfile.walk(path):
        for name in files:
            try:
                stat = tf.io.gfile.stat(os.path.join(folder, name))
            except tf.errors.NotFoundError:
                continue
            stamp.append((os.path.relpath(os.path.join(folder, name), path), stat.length, stat.mtime_nsec))
    return tuple(sorted(stamp))


@dataclasses.dataclass
class ModelVersion:
    """One loaded SavedModel version: its callable signatures and their SignatureDefs."""

    name: str
    version: int
    path: str
    loaded: Any  # the tf.saved_model.load object
    signature_defs: Dict[str, Any]

    @classmethod
    def load(cls, name: str, version: int, path: str) -> ModelVersion:
        """Load the SavedModel at `path` as `version` of model `name`."""
        return cls(name, version, path, tf.saved_model.load(path), read_signature_defs(path))

    def signature(self, name: str) -> Any:
        """The concrete function of signature `name`; FAILED_PRECONDITION naming those there are."""
        if name not in self.loaded.signatures:
            # TF Serving's code and wording (predict_util.cc), and what kind of model this is
            raise status_error(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature key "{name}" not found. '
                f"This model has: {', '.join(sorted(self.loaded.signatures))}"
                f"{contract.modality_hint(name, self.loaded.signatures)}",
            )
        return self.loaded.signatures[name]

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        """What GetModelMetadata answers: the version's SignatureDefs."""
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature_def in self.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature_def)
        return signature_map


def read_signature_defs(export_dir: str) -> Dict[str, Any]:
    """The SignatureDefs of a SavedModel (with their method names), read from saved_model.pb."""
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(export_dir, contract.SAVED_MODEL_FILE), "rb") as f:
        saved_model.ParseFromString(f.read())
    return dict(saved_model.meta_graphs[0].signature_def)


class ServedModel:
    """One model's served versions under its base path, re-checked on every poll()."""

    def __init__(self, config: model_server_config_pb2.ModelConfig,
                 warm_up: Optional[Callable[[ModelVersion], None]] = None) -> None:
        self.config = config
        self.name, self.base_path = config.name, config.base_path
        self._warm_up = warm_up or (lambda version: None)
        self._loaded: Dict[int, ModelVersion] = {}
        self._gone: Set[int] = set()  # loaded versions whose directory was removed (still answering)
        # version -> (directory stamp, error)
        self._failed: Dict[int, Tuple[Tuple[Tuple[str, int, int], ...], str]] = {}
        self._loading: Optional[int] = None
        self._ignored: Set[str] = set()  # base path entries that are no version (logged once)
        self._nothing_reported: Optional[str] = None
        self._lock = threading.Lock()

    def poll(self) -> None:
        """Load the versions the policy asks for (newest first), then unload the others.

        TF Serving's availability-preserving order, so a deleted version keeps answering (it is in memory) until the
        version that replaces it is loaded, and no request finds none.
        """
        on_disk = complete_versions(self.base_path, self._ignored)
        with self._lock:
            self._gone |= {v for v in self._loaded if v not in on_disk}
            self._failed = {v: f for v, f in self._failed.items() if v in on_disk}
        wanted = versions_to_serve(self.config, on_disk)
        self._report_nothing_to_serve(on_disk, wanted)
        for version in sorted(wanted - (set(self._loaded) - self._gone), reverse=True):
            self._load(version, on_disk[version])
        with self._lock:
            current = set(self._loaded) - self._gone
            settled = all(v in current or v in self._failed for v in wanted)
            if not wanted or (current & wanted and settled):
                for version in [v for v in self._loaded if v not in wanted or v in self._gone]:
                    why = "its directory was removed" if version in self._gone else "not in the policy any more"
                    log.info("unloading %s version %d (%s)", self.name, version, why)
                    del self._loaded[version]
                    self._gone.discard(version)

    def _report_nothing_to_serve(self, on_disk: Dict[int, str], wanted: Set[int]) -> None:
        """TF Serving's "No versions of servable ... found", once (again only after it changed)."""
        message = None
        if not wanted and not on_disk:
            missing = "" if tf.io.gfile.isdir(self.base_path) else " (the folder does not exist)"
            message = (f"No versions of servable {self.name} found under base path {self.base_path}{missing}. "
                       "Did you forget to name your leaf directory as a number (eg. '/1/')?")
        elif not wanted:
            policy = text_format.MessageToString(self.config.model_version_policy, as_one_line=True)
            message = (f"No versions of servable {self.name} found under base path {self.base_path} that its "
                       f"model_version_policy asks for ({policy or 'none'}); on disk: "
                       f"{', '.join(map(str, sorted(on_disk)))}")
        if message is not None and message != self._nothing_reported:
            log.warning("%s", message)
        self._nothing_reported = message

    def _load(self, version: int, path: str) -> None:
        stamp = directory_stamp(path)
        if version in self._failed and self._failed[version][0] == stamp:
            return  # the same files failed last time; retried once they change
        self._loading = version
        try:
            candidate = ModelVersion.load(self.name, version, path)
            self._warm_up(candidate)
        except Exception as err:  # a broken version must not stop the server
            log.error("could not load %s version %d from %s (retried when its files change): %s",
                      self.name, version, path, err)
            with self._lock:
                self._failed[version] = (stamp, f"{type(err).__name__}: {err}")
                self._loading = None
            return
        with self._lock:
            self._loaded[version] = candidate
            self._gone.discard(version)
            self._failed.pop(version, None)
            self._loading = None
        log.info("serving %s version %d from %s", self.name, version, path)

    def labels(self) -> Dict[str, int]:
        """The model's version labels: label -> version."""
        return dict(self.config.version_labels)

    def get(self, version: Optional[int] = None, label: Optional[str] = None) -> ModelVersion:
        """A loaded version: the newest by default, or the one asked for; NOT_FOUND like TF Serving."""
        loaded = dict(self._loaded)
        if label is not None:
            if label not in self.config.version_labels:
                raise status_error(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Unrecognized servable version label: {label!r} (model {self.name!r} has labels "
                    f"{sorted(self.config.version_labels) or 'none'}; see version_labels in the model config)",
                )
            version = self.config.version_labels[label]
        if not loaded:
            raise status_error(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: model {self.name!r} has no complete version "
                f"under {self.base_path} yet",
            )
        if version is None:
            return loaded[max(loaded)]
        if version not in loaded:
            raise status_error(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: {self.name!r} version {version} "
                f"(served: {', '.join(map(str, sorted(loaded)))})",
            )
        return loaded[version]

    def statuses(self) -> List[get_model_status_pb2.ModelVersionStatus]:
        """Each version's status (available, loading, failed) as TF Serving reports it."""
        with self._lock:
            loaded, failed, loading = sorted(self._loaded), dict(self._failed), self._loading
        result = [
            get_model_status_pb2.ModelVersionStatus(
                version=v, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE
            )
            for v in loaded
        ]
        if loading is not None and loading not in loaded:
            result.append(get_model_status_pb2.ModelVersionStatus(
                version=loading, state=get_model_status_pb2.ModelVersionStatus.LOADING))
            failed.pop(loading, None)
        for version, (_, error) in sorted(failed.items()):
            status = get_model_status_pb2.ModelVersionStatus(
                version=version, state=get_model_status_pb2.ModelVersionStatus.END
            )
            status.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
            status.status.error_message = error
            result.append(status)
        return sorted(result, key=lambda s: s.version)


# --- model config -----------------------------------------------------------------------------
def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """What --model_name/--model_base_path mean: one model, the newest version."""
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    return config


def read_model_config(path: str) -> model_server_config_pb2.ModelServerConfig:
    """A ModelServerConfig text file (serving/models.config).

    Relative base paths are taken from the file's folder, as TF Serving does.
    """
    try:
        with open(path) as f:
            config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    except OSError as err:
        raise ValueError(f"cannot read the model config file {path!r}: {err.strerror}") from None
    except text_format.ParseError as err:
        raise ValueError(f"{path}: not a ModelServerConfig in text format: {err}") from None
    if config.WhichOneof("config") != "model_config_list" or not config.model_config_list.config:
        raise ValueError(f"{path}: needs a model_config_list with at least one config {{ name base_path }}")
    names = [m.name for m in config.model_config_list.config]
    for model in config.model_config_list.config:
        if not model.name or not model.base_path:
            raise ValueError(f"{path}: every model config needs a name and a base_path")
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(f"{path}: model {model.name!r}: only model_platform \"tensorflow\" is served")
        if not model.base_path.startswith("/") and is_local(model.base_path):
            model.base_path = os.path.join(os.path.dirname(os.path.abspath(path)), model.base_path)
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: model names must be unique, got {names}")
    return config


def with_base_path(config: model_server_config_pb2.ModelServerConfig, model_name: str,
                   base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """`config` with one model's base_path replaced (run a production models.config over a local push directory)."""
    for model in config.model_config_list.config:
        if model.name == model_name:
            model.base_path = base_path
            return config
    raise ValueError(f"the model config has no model {model_name!r} (it has "
                     f"{[m.name for m in config.model_config_list.config]})")
