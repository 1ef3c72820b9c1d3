"""Kubeflow Pipelines v2 / Vertex AI: the one create_pipeline compiled offline, read back as JSON."""
import dataclasses
import json

import pytest

import pipeline_runner
from pipeline import pipeline as dag
from pipeline import runners
from pipeline.config import IMAGE_SCHEMA, PipelineConfig

IMAGE = "europe-docker.pkg.dev/my-proj/ml/eurosat-tfx:1"
DATA = "gs://my-bucket/eurosat/EuroSAT_RGB.zip"  # the archive as downloaded, converted in the DAG
ROOT = "gs://my-bucket/eurosat/root"
CLOUD = ["--data", DATA, "--pipeline-root", ROOT, "--image", IMAGE]
VERTEX = ["--project", "my-proj", "--region", "europe-west4"]

# Every task of the compiled DAG and the tasks it waits for (the resolver becomes two KFP tasks).
EXPECTED_DAG = {
    "ExampleGen": set(),
    "ImportSchemaGen": set(),
    "StatisticsGen": {"ExampleGen", "ImportSchemaGen"},  # statistics follow the schema
    "ExampleValidator": {"StatisticsGen", "ImportSchemaGen"},
    "AnomalyCheck": {"ExampleValidator"},  # anomalies stop the run before Transform
    "Transform": {"ExampleGen", "ImportSchemaGen", "AnomalyCheck"},
    # one folder: no warm start (a root of spans adds base_model: test_a_span_root_compiles_...);
    # the statistics go into the export (components/trainer_executor.py)
    "Trainer": {"Transform", "ImportSchemaGen", "StatisticsGen"},
    "latest_blessed_model_resolver-model-blessing-resolver": set(),
    "latest_blessed_model_resolver-model-resolver": set(),
    "Evaluator": {"ExampleGen", "Trainer", "latest_blessed_model_resolver-model-resolver"},
    # The real-server gate (components/infra_gate.py): TF Serving loads the model, answers test examples.
    "InfraGate": {"ExampleGen", "Trainer"},
    "Pusher": {"Trainer", "Evaluator", "InfraGate"},
}
BEAM_COMPONENTS = ("ExampleGen", "StatisticsGen", "Transform", "Evaluator")


@pytest.fixture(scope="module")
def spy():
    """Records every create_pipeline call (config, pipeline) while the module's tests run."""
    calls = []
    real = dag.create_pipeline

    def recording(config, *args, **kwargs):
        built = real(config, *args, **kwargs)
        calls.append((config, built))
        return built

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dag, "create_pipeline", recording)
        yield calls


def _compile(tmp_path_factory, spy, name, argv):
    out = tmp_path_factory.mktemp(name) / "pipeline.json"
    n = len(spy)
    assert pipeline_runner.main(argv + ["--output", str(out)]) == 0
    assert len(spy) == n + 1, "the compiled pipeline must come from pipeline.pipeline.create_pipeline"
    return json.loads(out.read_text()), spy[-1][0]


@pytest.fixture(scope="module")
def kubeflow_spec(tmp_path_factory, spy):
    return _compile(tmp_path_factory, spy, "kubeflow",
                    ["--runner", "kubeflow", *CLOUD, "--epochs", "7", "--batch-size", "16"])


@pytest.fixture(scope="module")
def vertex_spec(tmp_path_factory, spy):
    """Vertex dry run with Dataflow for the Beam components and the Trainer on 2 T4 GPUs."""
    return _compile(tmp_path_factory, spy, "vertex",
                    ["--runner", "vertex", "--dry-run", *CLOUD, *VERTEX, "--beam-runner", "dataflow",
                     "--vertex-training", "--machine-type", "n1-standard-16",
                     "--accelerator-type", "NVIDIA_TESLA_T4", "--accelerator-count", "2"])


def _tasks(spec):
    return spec["pipelineSpec"]["root"]["dag"]["tasks"]


def _param(spec, task, name):
    return _tasks(spec)[task]["inputs"]["parameters"][name]["runtimeValue"]["constantValue"]["stringValue"]


def _container(spec, task):
    return spec["pipelineSpec"]["deploymentSpec"]["executors"][f"{task}_executor"]["container"]


@pytest.mark.parametrize("which", ["kubeflow_spec", "vertex_spec"])
def test_compiled_dag_wires_every_component(which, request):
    spec, _ = request.getfixturevalue(which)
    tasks = _tasks(spec)
    assert {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()} == EXPECTED_DAG
    trainer_inputs = tasks["Trainer"]["inputs"]["artifacts"]
    assert trainer_inputs["examples"]["taskOutputArtifact"] == {
        "producerTask": "Transform", "outputArtifactKey": "transformed_examples"}
    # Every container runs the given image; the project's code is named by import path.
    containers = [e["container"] for e in spec["pipelineSpec"]["deploymentSpec"]["executors"].values()
                  if "container" in e]
    assert len(containers) == 10 and {c["image"] for c in containers} == {IMAGE}  # 8 TFX + AnomalyCheck, InfraGate
    assert _param(spec, "Transform", "preprocessing_fn") == dag.PREPROCESSING_FN
    assert _param(spec, "Trainer", "run_fn") == dag.RUN_FN
    assert "module_file" not in tasks["Trainer"]["inputs"]["parameters"]
    # Inputs and outputs: data from GCS, schema from the image, artifacts and pushes under the root.
    assert json.loads(_param(spec, "ExampleGen", "input_config")) == {"splits": [{"name": "all", "pattern": DATA}]}
    assert _param(spec, "ImportSchemaGen", "schema_file") == IMAGE_SCHEMA
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == ROOT
    push = json.loads(_param(spec, "Pusher", "push_destination"))
    assert push["filesystem"]["base_directory"] == f"{ROOT}/serving/eurosat"
    assert spec["pipelineSpec"]["pipelineInfo"]["name"] == "eurosat"


@pytest.mark.parametrize("which", ["kubeflow_spec", "vertex_spec"])
def test_the_example_gen_reads_the_raw_archive_in_the_cloud(which, request):
    """The compiled ExampleGen step runs the project's executor on the gs:// zip; nothing was read
    at compile time (the identity is the path), the conversion settings are its parameters."""
    spec, config = request.getfixturevalue(which)
    assert _container(spec, "ExampleGen")["args"][:2] == ["--executor_class_path", "components.example_gen.Executor"]
    params = _tasks(spec)["ExampleGen"]["inputs"]["parameters"]
    value = {k: v["runtimeValue"]["constantValue"] for k, v in params.items()}
    assert json.loads(value["source_identity"]["stringValue"]) == {
        "kind": "path", "source": DATA, "path": DATA, "converter_version": "4", "ingest_version": "2"}
    assert value["modality"] == {"stringValue": "rgb"} and value["max_bad_fraction"] == {"doubleValue": 0.01}
    output = json.loads(value["output_config"]["stringValue"])["split_config"]
    assert output["partition_feature_name"] == "source"
    assert [(s["name"], s["hash_buckets"]) for s in output["splits"]] == [("train", 6), ("eval", 2), ("test", 2)]


def test_tfds_and_synthetic_sources_compile_for_the_cloud(tmp_path):
    cloud = dict(pipeline_root_uri=ROOT, image=IMAGE)
    tfds = PipelineConfig(data="tfds:eurosat/all", tfds_data_dir="gs://my-bucket/tensorflow_datasets", **cloud)
    spec = runners.compile_pipeline(tfds, str(tmp_path / "tfds.json"))
    assert spec["displayName"] == "eurosat-all"  # the name says 13 bands: no data read to know it
    assert _param(spec, "ImportSchemaGen", "schema_file") == "/pipeline/schema/schema_all.pbtxt"
    assert _param(spec, "ExampleGen", "tfds_data_dir") == "gs://my-bucket/tensorflow_datasets"
    assert json.loads(_param(spec, "ExampleGen", "input_config"))["splits"][0]["pattern"] == "tfds:eurosat/all"
    synthetic = runners.compile_pipeline(PipelineConfig(data="synthetic:500", **cloud), str(tmp_path / "s.json"))
    assert json.loads(_param(synthetic, "ExampleGen", "input_config"))["splits"][0]["pattern"] == "synthetic:500"
    (problem,) = runners.cloud_problems(PipelineConfig(data="tfds:eurosat/rgb", **cloud), runners.KUBEFLOW)
    assert problem.startswith("--data 'tfds:eurosat/rgb' needs --tfds-data-dir gs://")


def test_kubeflow_spec_carries_the_hyperparameters_and_local_beam(kubeflow_spec):
    spec, config = kubeflow_spec
    custom = json.loads(_param(spec, "Trainer", "custom_config"))
    assert custom == {"hparams": config.hparams.to_dict()}
    assert (custom["hparams"]["epochs"], custom["hparams"]["batch_size"]) == (7, 16)
    assert _container(spec, "Trainer")["args"][1] == "components.trainer_executor.Executor"  # TFX's, + statistics
    # DirectRunner on every core of the component's pod.
    for task in BEAM_COMPONENTS:
        args = _container(spec, task)["args"]
        assert "--direct_running_mode=multi_processing" in args and "--direct_num_workers=0" in args
        assert not any(a.startswith("--runner=") for a in args)


def test_dataflow_arguments_reach_every_beam_component(vertex_spec):
    spec, _ = vertex_spec
    expected = ["--runner=DataflowRunner", "--project=my-proj", "--region=europe-west4",
                f"--temp_location={ROOT}/tmp", f"--sdk_container_image={IMAGE}"]
    for task in BEAM_COMPONENTS:
        args = _container(spec, task)["args"]
        assert args[args.index("{{$}}") + 1:] == expected, task


def test_vertex_training_job_runs_the_image_on_the_chosen_gpus(vertex_spec):
    spec, config = vertex_spec
    # TFX's Vertex AI Training executor, running components.trainer_executor.Executor in the job
    assert _container(spec, "Trainer")["args"][1] == "components.trainer_executor.VertexExecutor"
    from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_executor

    from components import trainer_executor

    assert issubclass(trainer_executor.VertexExecutor, vertex_executor.GenericExecutor)
    assert trainer_executor.VertexExecutor()._GetExecutorClass() is trainer_executor.Executor
    custom = json.loads(_param(spec, "Trainer", "custom_config"))
    assert custom["hparams"] == config.hparams.to_dict()  # run_fn still reads them there
    assert custom["ai_platform_enable_vertex"] is True
    assert custom["ai_platform_vertex_region"] == "europe-west4"
    assert custom["ai_platform_training_args"] == {
        "project": "my-proj",
        "worker_pool_specs": [{
            "machine_spec": {"machine_type": "n1-standard-16", "accelerator_type": "NVIDIA_TESLA_T4",
                             "accelerator_count": 2},
            "replica_count": 1,
            "container_spec": {"image_uri": IMAGE},
        }],
    }


def test_local_and_compiled_pipelines_come_from_the_same_function(kubeflow_spec, spy, tmp_path, monkeypatch):
    from tfx import v1 as tfx

    class Captured(Exception):
        pass

    class FakeLocalRunner:
        def run(self, pipeline):
            raise Captured(pipeline)

    monkeypatch.setattr(tfx.orchestration, "LocalDagRunner", FakeLocalRunner)
    config = PipelineConfig(output_dir=str(tmp_path), data="synthetic:20")
    with pytest.raises(Captured) as caught:
        runners.run_local(config)
    local_config, local = spy[-1]
    # The same config, with the modality read from the data (the RGB synthetic set), no infra
    # gate (no Docker, cluster or tensorflow_model_server here) and Beam's 'auto' mode resolved
    # for 20 synthetic images (in-process).
    assert caught.value.args[0] is local and local_config == config.replace(
        modality="rgb", infra_gate="off", beam_direct_running_mode="in_memory")
    compiled_ids = set(_tasks(kubeflow_spec[0]))
    local_ids = {c.id for c in local.components}
    assert local_ids - {"latest_blessed_model_resolver"} == compiled_ids - {
        "latest_blessed_model_resolver-model-blessing-resolver", "latest_blessed_model_resolver-model-resolver",
        "InfraGate"}


def _gate(spec):
    """The InfraGate task's parameters, the protos parsed."""
    params = {name: _param(spec, "InfraGate", name) for name in _tasks(spec)["InfraGate"]["inputs"]["parameters"]}
    return {k: json.loads(v) if v.startswith("{") else v for k, v in params.items()}


@pytest.mark.parametrize("which, runner", [("kubeflow_spec", "kubernetes"), ("vertex_spec", "process")])
def test_the_real_server_gate_loads_the_model_in_official_tf_serving_before_the_pusher(which, runner, request):
    from serving import contract

    spec, config = request.getfixturevalue(which)
    assert config.infra_gate == runner  # auto: a pod on Kubeflow, the image's binary on Vertex
    gate = _gate(spec)
    assert gate["runner"] == runner
    assert gate["serving_spec"]["tensorflow_serving"] == {"tags": [contract.TF_SERVING_VERSION]}
    assert gate["serving_spec"]["model_name"] == config.model_name
    assert ("kubernetes" in gate["serving_spec"]) == (runner == "kubernetes")
    assert gate["request_spec"] == {
        "tensorflow_serving": {"signature_names": ["serving_default", "classify"]},
        "split_name": "test", "num_examples": 8}
    assert gate["validation_spec"] == {"max_loading_time_seconds": 600, "num_tries": 2}
    # InfraValidator's executor (through the project's subclass) in the project image.
    assert _container(spec, "InfraGate")["args"][1] == "components.infra_gate.Executor"
    inputs = _tasks(spec)["InfraGate"]["inputs"]["artifacts"]
    assert inputs["model"]["taskOutputArtifact"] == {"producerTask": "Trainer", "outputArtifactKey": "model"}
    assert inputs["examples"]["taskOutputArtifact"]["producerTask"] == "ExampleGen"
    # The Pusher pushes only what the gate blessed.
    assert _tasks(spec)["Pusher"]["inputs"]["artifacts"]["infra_blessing"]["taskOutputArtifact"] == {
        "producerTask": "InfraGate", "outputArtifactKey": "blessing"}


def test_the_gate_can_be_switched_off_and_is_refused_where_it_cannot_run(tmp_path, monkeypatch):
    spec = runners.compile_pipeline(
        PipelineConfig(data=DATA, pipeline_root_uri=ROOT, image=IMAGE, infra_gate="off"), str(tmp_path / "p.json"))
    assert "InfraGate" not in _tasks(spec) and "infra_blessing" not in _tasks(spec)["Pusher"]["inputs"]["artifacts"]
    problems = runners.cloud_problems(PipelineConfig(infra_gate="kubernetes"), runners.LOCAL)
    assert problems == ["--infra-gate kubernetes starts a TF Serving pod beside a Kubeflow Pipelines step; "
                        "locally use --infra-gate process (needs tensorflow_model_server on PATH) or off"]
    monkeypatch.setenv("PATH", str(tmp_path))  # no tensorflow_model_server
    (problem,) = runners.cloud_problems(PipelineConfig(infra_gate="process"), runners.LOCAL)
    assert problem.startswith("--infra-gate process runs tensorflow_model_server, which is not on PATH")
    assert runners.cloud_problems(PipelineConfig(), runners.LOCAL) == []  # auto: off locally


def test_vertex_submission_sends_the_compiled_spec(vertex_spec, tmp_path, monkeypatch):
    """The real aiplatform.PipelineJob parses our spec offline; only the API call is replaced."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    spec, config = vertex_spec
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    submitted = {}
    monkeypatch.setattr(aiplatform.PipelineJob, "submit",
                        lambda self, service_account=None: submitted.update(sa=service_account, job=self))
    config = dataclasses.replace(config, service_account="runner@my-proj.iam.gserviceaccount.com")
    job = runners.submit_vertex(config, str(path), credentials=AnonymousCredentials())
    assert submitted["job"] is job and submitted["sa"] == config.service_account
    assert (job.project, job.location) == ("my-proj", "europe-west4")
    assert job._gca_resource.runtime_config.gcs_output_directory == ROOT
    assert set(job._gca_resource.pipeline_spec["root"]["dag"]["tasks"]) == set(EXPECTED_DAG)


def test_dry_run_does_not_submit(tmp_path, monkeypatch):
    def fail(*_, **__):
        raise AssertionError("--dry-run must not submit")

    monkeypatch.setattr(runners.vertex, "submit_vertex", fail)
    monkeypatch.setattr(runners.kubeflow, "compile_pipeline", lambda config, output, runner: None)
    argv = ["--runner", "vertex", "--dry-run", *CLOUD, *VERTEX, "--output", str(tmp_path / "p.json")]
    assert pipeline_runner.main(argv) == 0


@pytest.mark.parametrize("runner, drop, flag", [
    ("vertex", "--project", "--project"),
    ("vertex", "--region", "--region"),
    ("vertex", "--pipeline-root", "--pipeline-root"),
    ("vertex", "--image", "--image"),
    ("kubeflow", "--pipeline-root", "--pipeline-root"),
])
def test_missing_cloud_settings_are_named(runner, drop, flag, capsys):
    argv = ["--runner", runner, "--dry-run", *CLOUD, *VERTEX]
    i = argv.index(drop)
    del argv[i:i + 2]
    assert pipeline_runner.main(argv) == 2
    err = capsys.readouterr().err
    assert f"missing {flag} " in err and "Traceback" not in err
    assert err.count("missing") == 1  # only what is actually missing


def test_local_data_with_a_cloud_runner_is_refused(tmp_path, capsys):
    base = ["--runner", "kubeflow", "--pipeline-root", ROOT, "--image", IMAGE]
    assert pipeline_runner.main(base + ["--data", str(tmp_path)]) == 2
    assert "pass --data gs://" in capsys.readouterr().err
    assert pipeline_runner.main(base + ["--data", DATA, "--split-files", "a.txt,b.txt,c.txt"]) == 2
    assert "copy the split files to Cloud Storage" in capsys.readouterr().err


def test_cloud_problems_for_dataflow_gpus_and_roots():
    ok = PipelineConfig(data=DATA, pipeline_root_uri=ROOT, image=IMAGE, project="p", region="r")
    assert runners.cloud_problems(ok, runners.VERTEX) == []
    assert runners.cloud_problems(PipelineConfig(), runners.LOCAL) == []
    dataflow = runners.cloud_problems(PipelineConfig(beam_runner="dataflow"), runners.LOCAL)
    assert [p.split(" (")[0] for p in dataflow] == [
        "missing --project", "missing --region", "missing --image", "missing --temp-location"]
    local_root = dataclasses.replace(ok, pipeline_root_uri="/tmp/root")
    assert any("must be a gs:// folder" in p for p in runners.cloud_problems(local_root, runners.VERTEX))
    assert runners.cloud_problems(local_root, runners.KUBEFLOW) == []  # e.g. a cluster volume or MinIO
    gpus = PipelineConfig(training_accelerator_type="NVIDIA_L4", training_accelerator_count=1)
    assert "add --vertex-training" in runners.cloud_problems(gpus, runners.LOCAL)[0]
    with pytest.raises(ValueError, match="--accelerator-type and --accelerator-count"):
        PipelineConfig(training_accelerator_type="NVIDIA_L4")
    with pytest.raises(ValueError, match="Input should be 'direct' or 'dataflow'"):
        PipelineConfig(beam_runner="flink")


def test_cloud_settings_come_from_yaml_too(tmp_path):
    path = tmp_path / "cloud.yaml"
    path.write_text(f"project: my-proj\nregion: europe-west4\npipeline_root_uri: {ROOT}\n"
                    f"image: {IMAGE}\nbeam_runner: dataflow\nvertex_training: true\n"
                    "training_accelerator_type: NVIDIA_L4\ntraining_accelerator_count: 1\n")
    config = pipeline_runner.config_from_args(
        pipeline_runner.build_parser().parse_args(["--config", str(path), "--region", "us-central1"]))
    assert (config.project, config.region, config.pipeline_root) == ("my-proj", "us-central1", ROOT)
    assert config.beam_pipeline_args()[:3] == ["--runner=DataflowRunner", "--project=my-proj",
                                               "--region=us-central1"]
    job = dag.vertex_training_job(config)
    assert job["worker_pool_specs"][0]["machine_spec"]["accelerator_type"] == "NVIDIA_L4"


def test_13_band_compile_imports_the_13_band_schema_from_the_image(tmp_path):
    from pipeline import runners

    config = PipelineConfig(data="gs://b/eurosat-all", pipeline_root_uri="gs://b/root", image=IMAGE,
                            modality="all")
    spec = runners.compile_pipeline(config, str(tmp_path / "all.json"))
    assert _param(spec, "ImportSchemaGen", "schema_file") == "/pipeline/schema/schema_all.pbtxt"
    assert spec["displayName"] == "eurosat-all"  # apart from the RGB pipeline's models


def test_a_hub_backbone_on_13_band_data_is_refused_before_anything_runs(tmp_path):
    from schema.errors import UserError

    config = PipelineConfig(output_dir=str(tmp_path), data="synthetic/all:20").replace(
        hparams={"backbone": "https://tfhub.dev/google/imagenet/efficientnet_v2_imagenet21k_xl/feature_vector/2"})
    with pytest.raises(UserError, match="TF Hub image model, which takes RGB only"):
        runners.run_local(config)


SPAN_DATA = "gs://my-bucket/eurosat/spans/span-{SPAN}"


def test_a_span_root_compiles_with_tfx_span_driver_and_the_warm_start_resolver(tmp_path):
    """--data with {SPAN}: the ExampleGen step gets TFX's file-based ExampleGen driver (it resolves
    the newest span before the executor) and the Trainer's base_model the latest blessed model."""
    config = PipelineConfig(data=SPAN_DATA, pipeline_root_uri=ROOT, image=IMAGE, project="p", region="r")
    spec = runners.compile_pipeline(config, str(tmp_path / "spans.json"), runners.VERTEX)
    container = _container(spec, "ExampleGen")
    driver = container["lifecycle"]["preCacheCheck"]
    assert driver["command"][-1] == "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"
    assert container["args"][:2] == ["--executor_class_path", "components.example_gen.Executor"]
    assert _param(spec, "ExampleGen", "input_base") == "gs://my-bucket/eurosat/spans"
    assert json.loads(_param(spec, "ExampleGen", "input_config"))["splits"][0]["pattern"] == "span-{SPAN}"
    base_model = _tasks(spec)["Trainer"]["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"]
    assert base_model == {"producerTask": "latest_blessed_model_resolver-model-resolver", "outputArtifactKey": "model"}
    # the skew gate compiles too: the new span's statistics against the latest blessed model's
    gate = _tasks(spec)["AnomalyCheck"]["inputs"]["artifacts"]
    assert gate["served_model"]["taskOutputArtifact"] == base_model
    assert gate["statistics"]["taskOutputArtifact"] == {"producerTask": "StatisticsGen", "outputArtifactKey": "statistics"}
    assert "previous_statistics" not in gate
    with pytest.raises(Exception, match="--spans 2: Kubeflow/Vertex"):
        runners.compile_pipeline(config.replace(spans=2), str(tmp_path / "window.json"), runners.VERTEX)
