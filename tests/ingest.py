"""Run the ExampleGen's executor (components/example_gen.py) the way TFX does, on Beam's
in-memory DirectRunner, without a pipeline: the tests of every source kind call run_example_gen."""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

BEAM = ["--direct_running_mode=in_memory"]


def run_example_gen(source: str, out_dir: str, modality: Optional[str] = None, max_bad_fraction: float = 0.01,
                    seed: int = 0, split_files: str = "", tfds_data_dir: str = "",
                    beam_args: Optional[List[str]] = None) -> Tuple[object, dict]:
    """(the Examples artifact, its conversion report) of `source` converted into `out_dir`;
    `modality` None: read from the source as a local run does (pipeline.data.source_modality)."""
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts

    from components.example_gen import EuroSATExampleGen, Executor, report_of
    from pipeline.data import source_modality
    from pipeline.pipeline import hash_split_config

    component = EuroSATExampleGen(
        source=source, modality=modality or source_modality(source), max_bad_fraction=max_bad_fraction,
        seed=seed, tfds_data_dir=tfds_data_dir, split_files=split_files,
        output_config=None if split_files else hash_split_config())
    examples = standard_artifacts.Examples()
    examples.uri = out_dir
    executor = Executor(base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=beam_args or BEAM))
    executor.Do({}, {"examples": [examples]}, dict(component.exec_properties))
    return examples, report_of(out_dir)


def split_examples(out_dir: str, split: Optional[str] = None) -> List:
    """The tf.Examples of one split (or of all) of an Examples artifact folder."""
    import tensorflow as tf

    splits = [split] if split else sorted(d[len("Split-"):] for d in os.listdir(out_dir) if d.startswith("Split-"))
    files = [f for s in splits for f in tf.io.gfile.glob(os.path.join(out_dir, f"Split-{s}", "*"))]
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def sources_of(examples) -> List[str]:
    return sorted(e.features.feature["source"].bytes_list.value[0].decode() for e in examples)
