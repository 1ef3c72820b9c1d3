"""One configuration object for every runner: the command line and an optional YAML file fill it.

The Trainer's part (`hparams`) travels to the Trainer as custom_config, so it is recorded in
ML Metadata with each run.
"""
from __future__ import annotations

import dataclasses
import os
import posixpath
from typing import Any, Dict, List, Literal, Mapping, Optional

from pydantic import ValidationError
from pydantic.dataclasses import dataclass

from components import settings
from components.hparams import HParams
from components.settings import Fraction, NonNegativeInt, PositiveInt
from schema import modalities, records
from schema.errors import ConfigError
from serving import contract

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where the Dockerfile puts the project inside the component image (WORKDIR there).
IMAGE_PROJECT_DIR = "/pipeline"
IMAGE_SCHEMA = IMAGE_PROJECT_DIR + "/schema/" + modalities.RGB.schema_file
BEAM_RUNNERS = ("direct", "dataflow")
MODALITIES = (modalities.AUTO, *modalities.NAMES)
# Where the pipeline runs: locally (LocalDagRunner), or compiled for Kubeflow Pipelines / Vertex AI.
LOCAL, KUBEFLOW, VERTEX = "local", "kubeflow", "vertex"
RUNNERS = (LOCAL, KUBEFLOW, VERTEX)
# Beam's DirectRunner: 'auto' picks by the input's size (direct_running_mode below).
AUTO_MODE, IN_MEMORY, MULTI_PROCESSING = "auto", "in_memory", "multi_processing"
DIRECT_RUNNING_MODES = (AUTO_MODE, IN_MEMORY, "multi_threading", MULTI_PROCESSING)
# Below this much input on disk the DirectRunner runs in the component's process: worker
# processes each import TensorFlow and ship every element over gRPC, which costs more than
# they save on small data. Measured by benchmarks/beam_crossover.py (README, "Beam's running mode").
IN_PROCESS_BELOW_BYTES = 64 * 2**20
# The real-server gate before the Pusher (components/infra_gate.py); "auto" picks by runner.
AUTO_GATE, NO_GATE = "auto", "off"
INFRA_GATES = (AUTO_GATE, NO_GATE, *contract.GATE_RUNNERS)
_AUTO_GATES = {LOCAL: NO_GATE, KUBEFLOW: contract.GATE_KUBERNETES, VERTEX: contract.GATE_PROCESS}

# The demo: a small synthetic run that finishes in a few minutes on 2 CPU cores.
DEMO_OVERRIDES: Dict[str, Any] = {
    "pipeline_name": "eurosat-demo",
    "data": "synthetic:2000",
    "min_accuracy": 0.7,
    "min_macro_f1": 0.7,
}
DEMO_HPARAMS: Dict[str, Any] = {
    "weights": "none",
    "epochs": 8,
    "batch_size": 32,
    "learning_rate": 2e-3,
    "scratch_lr_factor": 1.0,  # the demo's rate as measured: 2e-3 as given
    "early_stopping_patience": 8,
}


@dataclass(config=settings.CONFIG)
class PipelineConfig:
    """Validated on construction and on replace() (components/settings.py): a wrong type or range
    is one line naming the key, the value and what was expected."""

    pipeline_name: str = contract.MODEL_NAME
    # A folder of TFRecords of tf.Example, image folders/zips, tfds:eurosat/{rgb,all}, synthetic[/all][:N].
    data: str = "synthetic:2000"
    # 'rgb' (encoded images) or 'all' (13 Sentinel-2 bands); 'auto': read from the source before a
    # local run (pipeline/data.py); compiling for the cloud reads no data: the one --data names
    # (synthetic/all, tfds:eurosat/all), else 'rgb'.
    modality: Literal[MODALITIES] = "auto"
    # Image folders/zips: fail the conversion when more than this fraction of files is unusable.
    max_bad_fraction: Fraction = records.DEFAULT_MAX_BAD_FRACTION
    # tfds:eurosat/rgb: a TFDS data dir where the dataset is (or is to be) prepared; "" = TFDS default.
    tfds_data_dir: str = ""
    # Published split lists "train.txt,val.txt,test.txt" instead of the 60/20/20 hash split.
    split_files: str = ""
    output_dir: str = "outputs"
    # "" = the curated schema of the data's modality, schema/schema.pbtxt or schema/schema_all.pbtxt.
    schema_path: str = ""
    model_name: str = contract.MODEL_NAME
    hparams: HParams = dataclasses.field(default_factory=HParams)
    # Blessing: absolute bars, and the largest drop allowed against the latest blessed model.
    min_accuracy: Fraction = 0.8
    min_macro_f1: Fraction = 0.8
    max_drop: Fraction = 0.01
    enable_cache: bool = True
    # Optional KerasTuner stage before the Trainer (components/tuner.py).
    tune: bool = False
    tuner_trials: PositiveInt = 4
    tuner_epochs: PositiveInt = 2
    # Beam DirectRunner locally: 'in_memory', 'multi_threading' or 'multi_processing'; 'auto':
    # in_memory below IN_PROCESS_BELOW_BYTES of input, multi_processing from there (or when the
    # input's size is unknown: cloud data, a compiled pipeline).
    beam_direct_running_mode: Literal[DIRECT_RUNNING_MODES] = AUTO_MODE
    beam_num_workers: NonNegativeInt = 0  # 0: one per CPU core
    extra_beam_args: List[str] = dataclasses.field(default_factory=list)

    # Cloud runs (Kubeflow Pipelines v2, Vertex AI Pipelines, Dataflow, Vertex AI Training).
    # The pipeline root components share; a gs:// folder for cloud runs (pushed models go there too).
    pipeline_root_uri: str = ""
    project: str = ""  # Google Cloud project id
    region: str = ""  # e.g. europe-west4: Vertex AI Pipelines, Training and Dataflow
    image: str = ""  # component image built from the Dockerfile, e.g. europe-docker.pkg.dev/p/r/eurosat-tfx:1
    service_account: str = ""  # Vertex AI Pipelines runs as this account ("" = the default one)
    # Beam-based components (ExampleGen, StatisticsGen, Transform, Evaluator): 'direct' or 'dataflow'.
    beam_runner: Literal[BEAM_RUNNERS] = "direct"
    temp_location: str = ""  # Dataflow's staging folder; default <pipeline root>/tmp
    # The Trainer as a Vertex AI Training custom job instead of in the component's process.
    vertex_training: bool = False
    training_machine_type: str = "n1-standard-8"
    training_accelerator_type: str = ""  # e.g. NVIDIA_TESLA_T4, NVIDIA_L4; "" = CPU only
    training_accelerator_count: NonNegativeInt = 0
    # Load the trained model in the official TF Serving server and query it before the Pusher:
    # 'kubernetes' (a tensorflow/serving pod beside the step), 'process' (the image's
    # tensorflow_model_server binary), 'off'; 'auto': kubernetes on Kubeflow, process on Vertex AI,
    # off locally (no Docker or cluster; 'process' works where tensorflow_model_server is on PATH).
    infra_gate: Literal[INFRA_GATES] = AUTO_GATE

    def __post_init__(self) -> None:
        """What one field alone cannot say (pydantic runs this after checking each field)."""
        if bool(self.training_accelerator_type) != (self.training_accelerator_count > 0):
            raise ValueError(
                "set both --accelerator-type and --accelerator-count (>= 1) for GPU training, or neither; got "
                f"type={self.training_accelerator_type!r}, count={self.training_accelerator_count}"
            )

    @property
    def data_modality(self) -> str:
        """The modality the pipeline is built for ('auto' not yet resolved counts as rgb)."""
        return modalities.RGB.name if self.modality == modalities.AUTO else self.modality

    def for_runner(self, runner: str) -> "PipelineConfig":
        """The config with 'auto' settings resolved for `runner` (local, kubeflow, vertex)."""
        if self.infra_gate == AUTO_GATE:
            return self.replace(infra_gate=_AUTO_GATES[runner])
        return self

    def with_modality(self, modality: str) -> "PipelineConfig":
        """The config for data of `modality`. 13-band runs get '-all' appended to the pipeline and
        model names, so an RGB and a 13-band model are never compared with each other (the
        Evaluator's baseline is the pipeline's latest blessed model) or pushed over each other."""
        record = modalities.get(modality)
        return self.replace(modality=modality, pipeline_name=record.with_suffix(self.pipeline_name),
                            model_name=record.with_suffix(self.model_name))

    def schema_file(self, schema_dir: str = os.path.join(REPO_ROOT, "schema")) -> str:
        """The schema ImportSchemaGen loads: the one given, or the curated one of the modality."""
        return self.schema_path or os.path.join(schema_dir, modalities.get(self.data_modality).schema_file)

    # Where things go; all under output_dir unless a pipeline root is given.
    @property
    def pipeline_root(self) -> str:
        if self.pipeline_root_uri:
            return self.pipeline_root_uri
        return os.path.join(self.output_dir, "pipelines", self.pipeline_name)

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata", f"{self.pipeline_name}.sqlite")

    @property
    def serving_dir(self) -> str:
        """TF Serving's model base path: <serving_dir>/<version>/saved_model.pb.

        With a pipeline root given (cloud runs) it lies under that root, where the Pusher's
        container can write; otherwise under output_dir."""
        if self.pipeline_root_uri:
            return posixpath.join(self.pipeline_root_uri, "serving", self.model_name)
        return os.path.join(self.output_dir, "serving", self.model_name)

    @property
    def dataflow_temp_location(self) -> str:
        return self.temp_location or posixpath.join(self.pipeline_root, "tmp")

    def beam_pipeline_args(self) -> List[str]:
        """Arguments every Beam-based component gets: Dataflow, or the DirectRunner on all cores.

        Dataflow workers run the component image (sdk_container_image), so they import the same
        preprocessing_fn as the Transform container."""
        if self.beam_runner == "dataflow":
            args = [
                "--runner=DataflowRunner",
                f"--project={self.project}",
                f"--region={self.region}",
                f"--temp_location={self.dataflow_temp_location}",
            ]
            if self.image:
                args.append(f"--sdk_container_image={self.image}")
            return args + list(self.extra_beam_args)
        mode = MULTI_PROCESSING if self.beam_direct_running_mode == AUTO_MODE else self.beam_direct_running_mode
        args = [f"--direct_running_mode={mode}"]
        if mode == MULTI_PROCESSING:
            args.append(f"--direct_num_workers={self.beam_num_workers}")
        return args + list(self.extra_beam_args)

    def for_input(self, input_bytes: Optional[int]) -> "PipelineConfig":
        """The config with an 'auto' Beam running mode resolved for an input of `input_bytes`
        (None: unknown); an explicit --beam-direct-running-mode is kept."""
        if self.beam_direct_running_mode != AUTO_MODE:
            return self
        return self.replace(beam_direct_running_mode=direct_running_mode(input_bytes))

    def replace(self, **changes: Any) -> "PipelineConfig":
        """A copy with `changes` (hparams: a mapping of hyperparameter changes), validated."""
        hp = changes.pop("hparams", None) or {}
        settings.check_keys(changes, self.keys())
        settings.check_keys(hp, list(HParams.__dataclass_fields__), "hparams.")
        try:
            hparams = dataclasses.replace(self.hparams, **hp)
        except ValidationError as err:
            raise settings.config_error(err, "hparams.") from None
        try:
            return dataclasses.replace(self, **changes, hparams=hparams)
        except ValidationError as err:
            raise settings.config_error(err) from None

    @classmethod
    def keys(cls) -> List[str]:
        return list(cls.__dataclass_fields__)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "PipelineConfig":
        """A config from a mapping (a YAML file); bad keys or values are one-line ConfigErrors."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"expected a mapping of configuration keys, got {type(values).__name__}")
        values = dict(values)
        settings.check_keys(values, cls.keys())
        hp = HParams.from_dict(values.pop("hparams", None) or {}, prefix="hparams.")
        return settings.build(cls, {**values, "hparams": hp})


def load_yaml(path: str) -> Dict[str, Any]:
    """The mapping in a YAML config file; an unreadable, over-size (settings.MAX_CONFIG_BYTES) or
    invalid file is one ConfigError line."""
    import yaml

    try:
        with open(path, "rb") as f:  # read at most the limit: a FIFO or /dev/zero has no size to check
            text = f.read(settings.MAX_CONFIG_BYTES + 1)
        if len(text) > settings.MAX_CONFIG_BYTES:
            raise ConfigError(f"--config {path!r} is larger than {settings.MAX_CONFIG_BYTES >> 20} MB; a "
                              "configuration file holds a few keys")
        values = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except IsADirectoryError:
        raise ConfigError(f"--config {path!r} is a folder; give a YAML file of configuration keys") from None
    except FileNotFoundError:
        raise ConfigError(f"--config {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--config {path!r} cannot be read: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"--config {path!r} is not valid YAML{where}: {problem}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path!r}: expected a mapping of configuration keys, got "
                          f"{type(values).__name__} {settings.short_repr(values)}")
    return values


def demo_config(base: Optional[PipelineConfig] = None) -> PipelineConfig:
    return (base or PipelineConfig()).replace(**DEMO_OVERRIDES, hparams=DEMO_HPARAMS)


def direct_running_mode(input_bytes: Optional[int]) -> str:
    """'auto's choice: in-process for an input smaller than IN_PROCESS_BELOW_BYTES, worker
    processes (one per core) for a larger one or one of unknown size."""
    if input_bytes is not None and input_bytes < IN_PROCESS_BELOW_BYTES:
        return IN_MEMORY
    return MULTI_PROCESSING
