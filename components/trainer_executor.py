"""TFX's Trainer executor, which also hands run_fn the StatisticsGen statistics it was given.

TFX 1.21's Trainer takes an optional `statistics` input (an ExampleStatistics artifact) but tells
run_fn only each split's example count. This executor adds ``fn_args.statistics_path``: the
``FeatureStats.pb`` of the train split (the first of TrainArgs' splits), None without the input.
run_fn copies it into the export (``assets.extra/training_feature_statistics.pb``), the reference
the next span's skew gate compares with (components/anomaly_check.py). ``VertexExecutor`` is TFX's
Vertex AI Training executor running this one in the training job.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.anomaly_check import STATS_FILE  # what StatisticsGen writes under Split-<name>/


def statistics_path(input_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> Optional[str]:
    """The train split's FeatureStats.pb of the Trainer's `statistics` input; None without one."""
    artifacts = input_dict.get(standard_component_specs.STATISTICS_KEY)
    if not artifacts:
        return None
    train_args = proto_utils.json_to_proto(exec_properties[standard_component_specs.TRAIN_ARGS_KEY],
                                           trainer_pb2.TrainArgs())
    split = train_args.splits[0] if train_args.splits else "train"
    return os.path.join(artifact_utils.get_split_uri(artifacts, split), STATS_FILE)


class Executor(trainer_executor.GenericExecutor):
    """TFX's GenericExecutor; fn_args also carries ``statistics_path`` (statistics_path)."""

    def _GetFnArgs(self, input_dict, output_dict, exec_properties):
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        fn_args.statistics_path = statistics_path(input_dict, exec_properties)
        return fn_args


class VertexExecutor(vertex_executor.GenericExecutor):
    """TFX's Vertex AI Training executor; the training job runs Executor (fn_args.statistics_path)."""

    def _GetExecutorClass(self):
        return Executor
