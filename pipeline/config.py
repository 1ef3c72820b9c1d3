"""One configuration object for every runner: the command line and an optional YAML file fill it.

The Trainer's part (`hparams`) travels to the Trainer as custom_config, so it is recorded in
ML Metadata with each run.
"""
from __future__ import annotations

import dataclasses
import os
import posixpath
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Optional, Tuple, TypeAlias, get_args

from pydantic import ValidationError
from pydantic.dataclasses import dataclass

from components import settings
from components.hparams import TRAINING, HParams
from components.settings import Fraction, NonNegativeInt, PositiveInt, setting
from schema import modalities, records
from schema.errors import ConfigError
from serving import contract

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where the Dockerfile puts the project inside the component image (WORKDIR there).
IMAGE_PROJECT_DIR = "/pipeline"
IMAGE_SCHEMA = IMAGE_PROJECT_DIR + "/schema/" + modalities.RGB.schema_file
# Fixed choices are Literal types (what pydantic validates and mypy checks); the tuples derive from them.
BeamRunner = Literal["direct", "dataflow"]
BEAM_RUNNERS: Tuple[str, ...] = get_args(BeamRunner)
MODALITIES = (modalities.AUTO, *modalities.NAMES)
# Beam's DirectRunner: 'auto' picks by the input's size (direct_running_mode below).
DirectRunningMode = Literal["auto", "in_memory", "multi_threading", "multi_processing"]
DIRECT_RUNNING_MODES: Tuple[str, ...] = get_args(DirectRunningMode)
AUTO_MODE, IN_MEMORY, _, MULTI_PROCESSING = DIRECT_RUNNING_MODES
# Below this much input on disk the DirectRunner runs in the component's process: worker
# processes each import TensorFlow and ship every element over gRPC, which costs more than
# they save on small data. Measured by benchmarks/beam_crossover.py (README, "Beam's running mode").
IN_PROCESS_BELOW_BYTES = 64 * 2**20
# The real-server gate before the Pusher (components/infra_gate.py); "auto": the runner's own
# (pipeline/runners/: each runner declares its gate).
AUTO_GATE, NO_GATE = "auto", "off"
INFRA_GATES = (AUTO_GATE, NO_GATE, *contract.GATE_RUNNERS)
# Choices that come from the registries below (schema.modalities, serving.contract): pydantic validates the
# Literal built from the tuple at runtime; mypy reads no Literal of a computed tuple, so to it they are str.
if TYPE_CHECKING:
    ModalityChoice: TypeAlias = str
    InfraGateChoice: TypeAlias = str
else:
    ModalityChoice, InfraGateChoice = Literal[MODALITIES], Literal[INFRA_GATES]
# The command line's groups of flags (a field declared in a group gets a flag: components/settings.py).
DATA = "data and outputs"
BLESSING = "evaluation and blessing"
EXECUTION = "execution"
CLOUD = "runners: Kubeflow Pipelines v2, Vertex AI Pipelines, Dataflow, Vertex AI Training"
GROUPS = (DATA, TRAINING, BLESSING, EXECUTION, CLOUD)

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
    """Every setting of a run, each declared once here (name, type, default, choices, help).

    The command line's flags, the YAML keys and --set are derived from these fields (components/settings.py).
    Validated on construction and on replace(): a wrong type or range is one line naming the key, the value and what
    was expected.
    """

    pipeline_name: str = setting(contract.MODEL_NAME, "name of the pipeline in metadata", group=DATA)
    data: str = setting(
        "synthetic:2000", "where examples come from: a folder of TFRecords of EuroSAT tf.Examples, a folder or .zip "
        "of class folders of images (the EuroSAT RGB archive of JPEGs or the all-bands archive of 13-band GeoTIFFs; "
        "converted by the ExampleGen), tfds:eurosat/rgb, tfds:eurosat/all, synthetic[:N] or synthetic/all[:N] "
        "(13 bands)", group=DATA)
    modality: ModalityChoice = setting(
        "auto", "'rgb' or 'all' (13 bands); 'auto' reads it from the data (local runs); compiling for the cloud it "
        "is what --data names (synthetic/all, tfds:eurosat/all), else rgb: pass --modality all for a 13-band "
        "archive", group=DATA)
    max_bad_fraction: Fraction = setting(
        records.DEFAULT_MAX_BAD_FRACTION, "image folders: stop when more than this fraction of files cannot be "
        "used (each is listed in the ExampleGen's conversion_report.json)", group=DATA)
    tfds_data_dir: str = setting("", "--data tfds:eurosat/...: TFDS data dir holding the prepared dataset "
                                 "(offline) or receiving the download (default: TFDS's own)", group=DATA)
    split_files: str = setting("", "published split lists train.txt,val.txt,test.txt (one image per line, e.g. "
                               "Forest/Forest_1.jpg) instead of the 60/20/20 hash split", group=DATA)
    output_dir: str = setting("outputs", "pipeline root, metadata, serving directory and reports", group=DATA)
    schema_path: str = setting("", "the schema ImportSchemaGen loads; '': the curated one of the data's "
                               "modality, schema/schema.pbtxt or schema/schema_all.pbtxt")
    model_name: str = setting(contract.MODEL_NAME, "TF Serving model name", group=DATA)
    hparams: HParams = setting(default_factory=HParams, description="the Trainer's hyperparameters "
                               "(components/hparams.py), recorded in ML Metadata as its custom_config")
    min_accuracy: Fraction = setting(0.8, "bless only above this test accuracy", group=BLESSING)
    min_macro_f1: Fraction = setting(0.8, "bless only above this macro F1", group=BLESSING)
    max_drop: Fraction = setting(0.01, "largest accuracy/F1 drop allowed against the latest blessed model",
                                 group=BLESSING)
    enable_cache: bool = setting(True, "reuse the cached outputs of components whose inputs did not change "
                                 "(--no-cache: re-run every component)", flag="--no-cache", group=EXECUTION)
    tune: bool = setting(False, "add a KerasTuner stage (learning rate, dropout, label smoothing) before the "
                         "Trainer (components/tuner.py)", group=TRAINING)
    tuner_trials: PositiveInt = setting(4, "Tuner trials", group=TRAINING)
    tuner_epochs: PositiveInt = setting(2, "epochs of each Tuner trial")
    beam_direct_running_mode: DirectRunningMode = setting(
        AUTO_MODE, "Beam DirectRunner mode; 'auto': in_memory below IN_PROCESS_BELOW_BYTES (64 MiB) of input, "
        "multi_processing from there or when the input's size is unknown (cloud data, a compiled pipeline)",
        group=EXECUTION)
    beam_num_workers: NonNegativeInt = setting(0, "DirectRunner workers, 0 = one per core", group=EXECUTION)
    extra_beam_args: List[str] = setting(default_factory=list, description="more Beam pipeline options, "
                                         "e.g. [--max_num_workers=4]")

    # Cloud runs (Kubeflow Pipelines v2, Vertex AI Pipelines, Dataflow, Vertex AI Training).
    pipeline_root_uri: str = setting("", "artifacts folder of cloud runs, gs://BUCKET/PATH (pushed models go "
                                     "under it too)", flag="--pipeline-root", group=CLOUD)
    project: str = setting("", "Google Cloud project (Vertex AI, Dataflow)", group=CLOUD)
    region: str = setting("", "Google Cloud region, e.g. europe-west4 (Vertex AI Pipelines, Training and "
                          "Dataflow)", group=CLOUD)
    image: str = setting("", "component image built from the Dockerfile, e.g. europe-docker.pkg.dev/p/r/"
                         "eurosat-tfx:1; the compiled spec runs it", group=CLOUD)
    service_account: str = setting("", "service account Vertex AI Pipelines runs as ('' = the default one)",
                                   group=CLOUD)
    beam_runner: BeamRunner = setting(
        "direct", "Beam runner of ExampleGen/StatisticsGen/Transform/Evaluator", group=CLOUD)
    temp_location: str = setting("", "Dataflow staging folder (default <pipeline-root>/tmp)", group=CLOUD)
    vertex_training: bool = setting(False, "run the Trainer as a Vertex AI Training job (machine and GPUs "
                                    "below) instead of in the component's process", group=CLOUD)
    training_machine_type: str = setting("n1-standard-8", "Vertex AI Training machine", flag="--machine-type",
                                         group=CLOUD)
    training_accelerator_type: str = setting(
        "", "Vertex AI Training GPU, e.g. NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100 ('' = CPU only)",
        flag="--accelerator-type", group=CLOUD)
    training_accelerator_count: NonNegativeInt = setting(
        0, "GPUs per training machine (the Trainer mirrors over all of them)", flag="--accelerator-count",
        group=CLOUD)
    infra_gate: InfraGateChoice = setting(
        AUTO_GATE, "load the model in the official TF Serving server and query it before the Pusher: kubernetes "
        "(a tensorflow/serving pod), process (tensorflow_model_server in the image or on PATH), off; auto = the "
        "runner's own (kubernetes on Kubeflow, process on Vertex, off locally)", group=CLOUD)
    # New data as spans (components/spans.py; README "New data as spans").
    spans: PositiveInt = setting(
        1, "with --data a root of spans (span-N/ folders or zips, or a {SPAN} pattern): Transform and the "
        "Trainer train on the latest N spans; the ExampleGen ingests the newest one (local runner; 1 on "
        "Kubeflow/Vertex, whose resolvers are the latest artifact or blessed model only)", group=DATA)
    allow_drift: bool = setting(
        False, "let a new span through whose statistics drifted from the previous span's, or from the served "
        "model's training statistics (skew), beyond the schema's thresholds (a deliberate change); the drift is "
        "still logged and reported", group=DATA)
    from_scratch: bool = setting(
        False, "train anew instead of warm-starting from the latest blessed model (components/warm_start.py)",
        group=TRAINING)

    def __post_init__(self) -> None:
        """What one field alone cannot say (pydantic runs this after checking each field)."""
        if bool(self.training_accelerator_type) != (self.training_accelerator_count > 0):
            kind, count = (settings.flag(PipelineConfig, f"training_accelerator_{k}") for k in ("type", "count"))
            raise ValueError(
                f"set both {kind} and {count} (>= 1) for GPU training, or neither; got "
                f"type={self.training_accelerator_type!r}, count={self.training_accelerator_count}"
            )

    @property
    def data_modality(self) -> str:
        """The modality the pipeline is built for ('auto' not yet resolved counts as rgb)."""
        return modalities.RGB.name if self.modality == modalities.AUTO else self.modality

    def with_auto_gate(self, gate: str) -> "PipelineConfig":
        """The config with an 'auto' infra gate resolved to `gate`, the runner's own."""
        if self.infra_gate == AUTO_GATE:
            return self.replace(infra_gate=gate)
        return self

    def with_modality(self, modality: str) -> "PipelineConfig":
        """The config for data of `modality`.

        13-band runs get '-all' appended to the pipeline and model names, so an RGB and a 13-band model are never
        compared with each other (the Evaluator's baseline is the pipeline's latest blessed model) or pushed over
        each other.
        """
        record = modalities.get(modality)
        return self.replace(modality=modality, pipeline_name=record.with_suffix(self.pipeline_name),
                            model_name=record.with_suffix(self.model_name))

    def schema_file(self, schema_dir: str = os.path.join(REPO_ROOT, "schema")) -> str:
        """The schema ImportSchemaGen loads: the one given, or the curated one of the modality."""
        return self.schema_path or os.path.join(schema_dir, modalities.get(self.data_modality).schema_file)

    # Where things go; all under output_dir unless a pipeline root is given.
    @property
    def pipeline_root(self) -> str:
        """The pipeline's artifacts folder: --pipeline-root, else <output_dir>/pipelines/<pipeline_name>."""
        if self.pipeline_root_uri:
            return self.pipeline_root_uri
        return os.path.join(self.output_dir, "pipelines", self.pipeline_name)

    @property
    def metadata_path(self) -> str:
        """The local ML Metadata SQLite file: <output_dir>/metadata/<pipeline_name>.sqlite."""
        return os.path.join(self.output_dir, "metadata", f"{self.pipeline_name}.sqlite")

    @property
    def serving_dir(self) -> str:
        """TF Serving's model base path: <serving_dir>/<version>/saved_model.pb.

        With a pipeline root given (cloud runs) it lies under that root, where the Pusher's
        container can write; otherwise under output_dir.
        """
        if self.pipeline_root_uri:
            return posixpath.join(self.pipeline_root_uri, "serving", self.model_name)
        return os.path.join(self.output_dir, "serving", self.model_name)

    @property
    def dataflow_temp_location(self) -> str:
        """Dataflow's staging folder: --temp-location, else <pipeline root>/tmp."""
        return self.temp_location or posixpath.join(self.pipeline_root, "tmp")

    def beam_pipeline_args(self) -> List[str]:
        """Arguments every Beam-based component gets: Dataflow, or the DirectRunner on all cores.

        Dataflow workers run the component image (sdk_container_image), so they import the same
        preprocessing_fn as the Transform container.
        """
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
        """The config with an 'auto' Beam running mode resolved for an input of `input_bytes` (None: unknown).

        An explicit --beam-direct-running-mode is kept.
        """
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
        """The names of every setting (the YAML keys)."""
        return list(cls.__dataclass_fields__)


def load_yaml(path: str) -> Dict[str, Any]:
    """The mapping in a YAML config file.

    An unreadable, over-size (settings.MAX_CONFIG_BYTES) or invalid file is one ConfigError line.
    """
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
    """The demo's configuration: `base` (default: the defaults) with DEMO_OVERRIDES and DEMO_HPARAMS."""
    return (base or PipelineConfig()).replace(**DEMO_OVERRIDES, hparams=DEMO_HPARAMS)


def direct_running_mode(input_bytes: Optional[int]) -> str:
    """What 'auto' picks for an input of `input_bytes`.

    'auto's choice: in-process for an input smaller than IN_PROCESS_BELOW_BYTES, worker processes (one per core) for
    a larger one or one of unknown size.
    """
    if input_bytes is not None and input_bytes < IN_PROCESS_BELOW_BYTES:
        return IN_MEMORY
    return MULTI_PROCESSING
