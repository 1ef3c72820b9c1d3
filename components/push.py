"""TFX's Pusher with an all-or-nothing copy on local disks.

TFX's Pusher copies the model into <base>/<version>/ in place (saved_model.pb last, so a server
never loads a half-copied version); a Pusher killed mid-copy leaves that partial folder on disk
for good. This executor lets TFX copy into <base>/.partial/<version>/ instead and renames the
folder to <base>/<version>/ once it is complete: one rename, atomic on a local file system, and
servers ignore `.partial` (not a version number). What a killed push left there is removed by the
next push. Cloud destinations (gs://) keep TFX's own copy: a bucket has no rename.
"""
from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Dict, List

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from schema.locations import is_local

PARTIAL_DIR = ".partial"  # under the push directory: versions being copied

log = logging.getLogger(__name__)


class Executor(pusher_executor.Executor):
    """TFX's Pusher executor, copying into a temporary folder renamed when complete."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """Push the blessed model; local destinations are copied into .partial/ and renamed when complete."""
        key = standard_component_specs.PUSH_DESTINATION_KEY
        destination = proto_utils.json_to_proto(exec_properties[key], pusher_pb2.PushDestination())
        base = destination.filesystem.base_directory
        if destination.WhichOneof("destination") != "filesystem" or not is_local(base):
            return super().Do(input_dict, output_dict, exec_properties)
        staging = os.path.join(base, PARTIAL_DIR)
        if os.path.isdir(staging):
            log.info("removing %s: what an interrupted push left", staging)
            shutil.rmtree(staging)
        destination.filesystem.base_directory = staging
        super().Do(input_dict, output_dict, {**exec_properties, key: proto_utils.proto_to_json(destination)})
        pushed = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if pushed.get_int_custom_property("pushed") == 1:
            version = pushed.get_string_custom_property("pushed_version")
            final = os.path.join(base, version)
            if os.path.exists(final):  # TFX's rule: an existing version is not pushed over
                log.info("destination %s already exists, keeping it", final)
            else:
                os.rename(os.path.join(staging, version), final)
            pushed.set_string_custom_property("pushed_destination", final)
        shutil.rmtree(staging, ignore_errors=True)
