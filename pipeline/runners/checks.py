"""What a runner needs from the config, checked before anything runs.

One line per problem, each naming the flag and the YAML key that fix it (both derived from PipelineConfig's fields).
"""
from __future__ import annotations

from typing import List

from components import settings
from pipeline.config import PipelineConfig
from pipeline.runners import registry
from schema.errors import ConfigError


def flag(name: str) -> str:
    """The flag of PipelineConfig field `name` (--pipeline-root for pipeline_root_uri)."""
    return settings.flag(PipelineConfig, name)


def missing(config: PipelineConfig, name: str, why: str) -> List[str]:
    """["missing --FLAG (config key 'NAME'): WHY"] when the setting `name` is empty, else []."""
    return [] if getattr(config, name) else [f"missing {settings.flag_and_key(PipelineConfig, name)}: {why}"]


def is_gcs(path: str) -> bool:
    """Whether `path` is on Cloud Storage (gs://)."""
    return path.startswith("gs://")


def gcs_root_problems(config: PipelineConfig) -> List[str]:
    """Vertex AI and Dataflow read and write Cloud Storage only."""
    if config.pipeline_root_uri and not is_gcs(config.pipeline_root_uri):
        return [f"{flag('pipeline_root_uri')} {config.pipeline_root_uri!r} must be a gs:// folder "
                "for Vertex AI and Dataflow"]
    return []


def cloud_data_problems(config: PipelineConfig) -> List[str]:
    """A runner whose components run in the component image: what they must be able to reach."""
    from components.data_sources import PATH_KIND, TFDS_KIND, source_kind  # numpy: not for --help
    from schema.locations import is_local

    problems = missing(config, "pipeline_root_uri", "where the components write their artifacts, e.g. gs://BUCKET/eurosat")
    problems += missing(config, "image", "the component image built from the Dockerfile "
                        "(docker build -t IMAGE . && docker push IMAGE)")
    # The ExampleGen reads the source in the cloud: synthetic data is generated there, an archive,
    # a folder or TFDS' prepared data must be where the cloud components can read them.
    data, kind = flag("data"), source_kind(config.data)
    if kind == PATH_KIND and is_local(config.data):
        problems.append(f"{data} {config.data!r} is a local path the cloud components cannot read; "
                        f"copy it to Cloud Storage and pass {data} gs://BUCKET/EuroSAT_RGB.zip (or a folder)")
    if kind == TFDS_KIND and (not config.tfds_data_dir or is_local(config.tfds_data_dir)):
        problems.append(f"{data} {config.data!r} needs {flag('tfds_data_dir')} gs://BUCKET/tensorflow_datasets "
                        "(config key 'tfds_data_dir'): the Cloud Storage data dir the dataset is prepared (or is "
                        "to be prepared) in")
    if config.split_files and any(is_local(p) for p in config.split_files.split(",")):
        problems.append(f"{flag('split_files')} {config.split_files!r}: copy the split files to Cloud Storage "
                        "and pass their gs:// paths")
    return problems


def service_problems(config: PipelineConfig) -> List[str]:
    """Dataflow and Vertex AI Training, whichever runner starts them."""
    problems: List[str] = []
    if config.beam_runner == "dataflow" or config.vertex_training:
        problems += gcs_root_problems(config)
    if config.beam_runner == "dataflow":
        problems += missing(config, "project", "the project Dataflow jobs run in")
        problems += missing(config, "region", "the Dataflow region")
        problems += missing(config, "image", "Dataflow workers run the component image to import the project")
        if not config.temp_location and not is_gcs(config.pipeline_root):
            problems.append(f"missing {settings.flag_and_key(PipelineConfig, 'temp_location')}: Dataflow stages "
                            f"files in a gs:// folder (default <pipeline root>/tmp needs a gs:// "
                            f"{flag('pipeline_root_uri')})")
    if config.vertex_training:
        problems += missing(config, "project", "the project Vertex AI Training jobs run in")
        problems += missing(config, "region", "the Vertex AI Training region")
        problems += missing(config, "image", "Vertex AI Training runs the component image")
    elif config.training_accelerator_count:
        problems.append(f"{flag('training_accelerator_type')}/{flag('training_accelerator_count')} choose the GPUs "
                        f"of a Vertex AI Training job: add {flag('vertex_training')} (locally the Trainer uses the "
                        "GPUs it sees)")
    return problems


def cloud_problems(config: PipelineConfig, runner: str) -> List[str]:
    """What is missing or wrong for `runner` (empty when the settings are complete).

    One line per problem, each naming the flag (and YAML key) that fixes it. Pure: tests call it directly.
    """
    entry = registry.get(runner)
    problems = cloud_data_problems(config) if entry.on_cloud else []
    problems += entry.problems(config) + service_problems(config)
    # A few problems repeat across the checks above (e.g. --project); report each once.
    return list(dict.fromkeys(problems))


def check_config(config: PipelineConfig, runner: str) -> None:
    """Raise ConfigError (a ValueError) listing every problem at once, so a user fixes them in one go."""
    problems = cloud_problems(config, runner)
    if problems:
        raise ConfigError(f"--runner {runner} cannot start:\n  " + "\n  ".join(problems))
