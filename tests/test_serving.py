"""Serving: the export contract, the gRPC endpoint (ours, and TF Serving's when installed), the client.

One model is exported per session (tests/serving_fixtures.py); the endpoint tests run against a
`python -m serving.server` subprocess and, when the binary is on PATH, `tensorflow_model_server`.
"""
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from components import synthetic
from components.transform import preprocessing_fn
from schema import features
from serving import client as serving_client
from serving import server as serving_server
from serving import signatures, warmup
from tests import serving_fixtures

MODEL = serving_fixtures.MODEL_NAME
DEV_SERVER_MAX_MESSAGE = 4 * 1024 * 1024  # the subprocess's limit: the over-size test exceeds it
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return serving_fixtures.export_model(str(tmp_path_factory.mktemp("push")))


@pytest.fixture(scope="session")
def images():
    return [jpeg for jpeg, _, _ in synthetic.synthetic_examples(10, seed=21)]


@pytest.fixture(scope="session")
def loaded(exported):
    return tf.saved_model.load(exported.export_dir)


# --- export contract ---------------------------------------------------------------------------
def test_export_has_tf_serving_layout_and_warmup(exported):
    base = exported.model_base_path
    assert os.listdir(base) == [str(serving_fixtures.FIRST_VERSION)]
    assert serving_server.complete_versions(base) == {1: exported.export_dir}
    logs = warmup.read_warmup_requests(exported.export_dir)
    kinds = [(log.WhichOneof("log_type"), _signature_of(log)) for log in logs]
    assert kinds == [
        ("predict_log", signatures.PREDICT_IMAGES),
        ("predict_log", signatures.SERVING_DEFAULT),
        ("classify_log", signatures.CLASSIFY),
    ]
    signature_defs = serving_server.read_signature_defs(exported.export_dir)
    assert signature_defs[signatures.CLASSIFY].method_name == signatures.CLASSIFY_METHOD_NAME
    assert signature_defs[signatures.PREDICT_IMAGES].method_name == "tensorflow/serving/predict"


def _signature_of(log):
    kind = log.WhichOneof("log_type")
    return getattr(log, kind).request.model_spec.signature_name


def test_every_signature_matches_the_transform_path(exported, loaded, images):
    """Training and serving cannot skew: three signatures == preprocessing_fn + the Keras model."""
    raw = tf.constant(images)
    transformed = preprocessing_fn(
        {features.IMAGE_KEY: raw, features.LABEL_KEY: tf.zeros([len(images)], tf.int64)}
    )[features.TRANSFORMED_IMAGE_KEY]
    expected = exported.model(transformed, training=False).numpy()
    assert np.ptp(expected.argmax(-1)) > 0, "the fixture model must tell images apart"

    examples = tf.constant(
        [features.make_example(image, 0, "test").SerializeToString() for image in images]
    )
    by_images = loaded.signatures[signatures.PREDICT_IMAGES](images=raw)
    by_examples = loaded.signatures[signatures.SERVING_DEFAULT](examples=examples)
    by_classify = loaded.signatures[signatures.CLASSIFY](inputs=examples)
    tft_graph = loaded.signatures[signatures.TRANSFORM_FEATURES](examples=examples)

    np.testing.assert_allclose(tft_graph[features.TRANSFORMED_IMAGE_KEY].numpy(), transformed.numpy(), atol=1e-6)
    for probabilities in (
        by_images[signatures.PROBABILITIES],
        by_examples[signatures.PROBABILITIES],
        by_classify[signatures.CLASSIFY_SCORES],
    ):
        np.testing.assert_allclose(probabilities.numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(by_images[signatures.CLASS_ID].numpy(), expected.argmax(-1))
    names = [features.CLASS_NAMES[i].encode() for i in expected.argmax(-1)]
    assert by_images[signatures.CLASS_NAME].numpy().tolist() == names
    assert by_classify[signatures.CLASSIFY_CLASSES].numpy()[0].tolist() == [n.encode() for n in features.CLASS_NAMES]


def test_set_classify_method_name_names_a_missing_signature(tmp_path, exported):
    shutil.copy(os.path.join(exported.export_dir, "saved_model.pb"), tmp_path / "saved_model.pb")
    with pytest.raises(ValueError, match="no 'nope' signature"):
        signatures.set_classify_method_name(str(tmp_path), "nope")


def test_complete_versions_ignores_half_pushed_and_foreign_dirs(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"x")
    (tmp_path / "2" / "variables").mkdir(parents=True)  # Pusher still copying: no saved_model.pb
    (tmp_path / "tmp-3").mkdir()
    assert serving_server.complete_versions(str(tmp_path)) == {1: str(tmp_path / "1")}
    assert serving_server.complete_versions(str(tmp_path / "missing")) == {}


# --- servers ------------------------------------------------------------------------------------
def _start_dev_server(base_path):
    command = [
        sys.executable, "-m", "serving.server", "--model-base-path", base_path, "--model-name", MODEL,
        "--port", "0", "--max-message-bytes", str(DEV_SERVER_MAX_MESSAGE),
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    for line in process.stdout:  # "serving model ... on host:port" once loaded and listening
        output.append(line)
        match = re.search(r"^serving model .* on (\S+):(\d+)$", line.strip())
        if match:
            # keep draining the server's log so it never blocks on a full pipe
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, f"localhost:{match.group(2)}"
    process.kill()
    raise RuntimeError("serving.server did not start:\n" + "".join(output[-20:]))


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_tf_serving(base_path):
    port = _free_port()
    process = subprocess.Popen(
        ["tensorflow_model_server", f"--port={port}", "--rest_api_port=0", f"--model_name={MODEL}",
         f"--model_base_path={base_path}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    address = f"localhost:{port}"
    deadline = time.time() + 120
    with serving_client.ServingClient(address, MODEL, timeout=2) as c:
        while time.time() < deadline:
            try:
                if "AVAILABLE" in c.model_status().values():
                    return process, address
            except serving_client.ServingError:
                time.sleep(0.5)
    process.kill()
    raise RuntimeError("tensorflow_model_server did not make the model AVAILABLE within 120 s")


@pytest.fixture(scope="module", params=["serving.server", "tensorflow_model_server"])
def server(request, exported):
    """(backend name, address) of a running server over the exported model's base path."""
    if request.param == "tensorflow_model_server":
        if shutil.which("tensorflow_model_server") is None:
            pytest.skip("tensorflow_model_server is not on PATH (the same tests run against it when it is)")
        process, address = _start_tf_serving(exported.model_base_path)
    else:
        process, address = _start_dev_server(exported.model_base_path)
    yield request.param, address
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture()
def stub(server):
    channel = grpc.insecure_channel(server[1], options=[("grpc.max_send_message_length", 64 << 20)])
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def _request(inputs, signature=signatures.PREDICT_IMAGES, name=MODEL, version=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(value)
    return request


def _status_of(call):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details()


def test_client_predictions_match_the_saved_model(server, loaded, images):
    with serving_client.ServingClient(server[1], MODEL) as c:
        probabilities = c.predict_images(images, batch_size=4)  # 3 requests: 4 + 4 + 2
        classified = c.classify_images(images[:3])
    expected = loaded.signatures[signatures.PREDICT_IMAGES](images=tf.constant(images))[signatures.PROBABILITIES]
    np.testing.assert_allclose(probabilities, expected.numpy(), atol=1e-5)
    for row, scores in zip(classified, expected.numpy()[:3]):
        assert set(row) == set(features.CLASS_NAMES)
        np.testing.assert_allclose([row[n] for n in features.CLASS_NAMES], scores, atol=1e-5)


def test_client_status_and_metadata(server):
    with serving_client.ServingClient(server[1], MODEL) as c:
        assert c.model_status() == {1: "AVAILABLE"}
        metadata = c.model_metadata()
    assert {signatures.SERVING_DEFAULT, signatures.PREDICT_IMAGES, signatures.CLASSIFY} <= set(metadata)
    assert metadata[signatures.CLASSIFY].method_name == signatures.CLASSIFY_METHOD_NAME
    assert set(metadata[signatures.PREDICT_IMAGES].outputs) == {
        signatures.PROBABILITIES, signatures.CLASS_ID, signatures.CLASS_NAME
    }


def test_client_cli_prints_top_k_per_file(server, images, tmp_path, capsys):
    paths = []
    for i, image in enumerate(images[:3]):
        paths.append(str(tmp_path / f"patch{i}.jpg"))
        open(paths[-1], "wb").write(image)
    assert serving_client.main(["--server", server[1], "--top-k", "2", "--batch-size", "2", *paths]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0::3] == paths
    for line in out[1::3] + out[2::3]:
        name, score = line.split()
        assert name in features.CLASS_NAMES and 0.0 <= float(score) <= 1.0


def test_client_explains_missing_model_and_file(server, tmp_path, capsys):
    image = tmp_path / "a.jpg"
    image.write_bytes(b"x")
    assert serving_client.main(["--server", server[1], "--model-name", "nope", str(image)]) == 1
    assert "does not serve model 'nope'" in capsys.readouterr().err
    assert serving_client.main(["--server", server[1], str(tmp_path / "missing.jpg")]) == 1
    assert "cannot read image file" in capsys.readouterr().err


def test_client_explains_a_server_that_is_down(capsys, tmp_path):
    image = tmp_path / "a.jpg"
    image.write_bytes(b"x")
    address = f"127.0.0.1:{_free_port()}"
    assert serving_client.main(["--server", address, "--timeout", "3", "--retries", "1", str(image)]) == 1
    err = capsys.readouterr().err
    assert f"no model server answers at {address}" in err and "python -m serving.server" in err


def test_bad_requests_get_tf_serving_status_codes_and_the_server_keeps_serving(server, stub, images):
    backend = server[0]
    strings = tf.make_tensor_proto([b"definitely not a jpeg"], dtype=tf.string)
    floats = tf.make_tensor_proto(np.zeros([1, 64, 64, 3], np.float32))
    good = tf.make_tensor_proto(images[:1], dtype=tf.string)
    cases = {
        "non-image bytes": (lambda: stub.Predict(_request({"images": strings})), grpc.StatusCode.INVALID_ARGUMENT, "image file format"),
        "empty request": (lambda: stub.Predict(_request({})), grpc.StatusCode.INVALID_ARGUMENT, "no inputs"),
        "wrong tensor type": (lambda: stub.Predict(_request({"images": floats})), grpc.StatusCode.INVALID_ARGUMENT, "must be string"),
        "wrong input name": (lambda: stub.Predict(_request({"pixels": good})), grpc.StatusCode.INVALID_ARGUMENT, "unknown"),
        "unknown signature": (lambda: stub.Predict(_request({"images": good}, signature="nope")), grpc.StatusCode.FAILED_PRECONDITION, '"nope" not found'),
        "unknown model": (lambda: stub.Predict(_request({"images": good}, name="nope")), grpc.StatusCode.NOT_FOUND, "'nope'"),
        "unknown version": (lambda: stub.Predict(_request({"images": good}, version=99)), grpc.StatusCode.NOT_FOUND, "version 99"),
    }
    for what, (call, code, message) in cases.items():
        got_code, details = _status_of(call)
        assert got_code == code, f"{what}: {got_code} {details}"
        if backend == "serving.server":  # TF Serving words its messages its own way
            assert message in details, f"{what}: {details}"
    response = stub.Predict(_request({"images": good}))
    assert tf.make_ndarray(response.outputs[signatures.PROBABILITIES]).shape == (1, features.NUM_CLASSES)


def test_classify_needs_the_classify_signature(server, stub):
    from tensorflow_serving.apis import classification_pb2

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL  # no signature name: serving_default, a Predict signature
    request.input.example_list.examples.add()
    code, details = _status_of(lambda: stub.Classify(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    request.model_spec.signature_name = signatures.CLASSIFY
    request.input.example_list.Clear()  # no examples at all
    code, details = _status_of(lambda: stub.Classify(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details


def test_over_size_message_is_resource_exhausted(server, stub, images):
    if server[0] != "serving.server":
        pytest.skip("TF Serving accepts messages up to 2 GiB; the limit is the dev server's flag")
    big = tf.make_tensor_proto([b"x" * (DEV_SERVER_MAX_MESSAGE + 1024)], dtype=tf.string)
    code, _ = _status_of(lambda: stub.Predict(_request({"images": big})))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    response = stub.Predict(_request({"images": tf.make_tensor_proto(images[:1], dtype=tf.string)}))
    assert signatures.PROBABILITIES in response.outputs


LOAD_CLIENTS = 4
LOAD_REQUESTS_PER_CLIENT = 500


def test_load_several_concurrent_clients_zero_errors(server, images):
    """Loopback only; a few thousand small requests from concurrent clients, none may fail."""
    errors, done = [], []

    def worker(offset):
        with serving_client.ServingClient(server[1], MODEL, timeout=30) as c:
            for i in range(LOAD_REQUESTS_PER_CLIENT):
                try:
                    probabilities = c.predict_images([images[(offset + i) % len(images)]])
                    assert probabilities.shape == (1, features.NUM_CLASSES)
                    done.append(1)
                except Exception as err:  # noqa: BLE001 - counted, reported below
                    errors.append(repr(err))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(LOAD_CLIENTS)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    assert not errors, errors[:3]
    assert len(done) == LOAD_CLIENTS * LOAD_REQUESTS_PER_CLIENT
    print(f"load: {len(done)} requests in {elapsed:.1f}s ({len(done) / elapsed:.0f} req/s)")


# --- version polling (in-process server on its own copy of the push directory) ------------------
def _push(source_dir, target_dir, complete=True):
    """Copy a version like TFX's Pusher: everything first, saved_model.pb last."""
    shutil.copytree(source_dir, target_dir, ignore=shutil.ignore_patterns("saved_model.pb"))
    if complete:
        shutil.copy(os.path.join(source_dir, "saved_model.pb"), os.path.join(target_dir, "saved_model.pb"))


def _wait_for(predicate, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_server_loads_new_complete_versions_and_ignores_incomplete_ones(exported, tmp_path, images):
    base = tmp_path / MODEL
    base.mkdir()
    model_server = serving_server.ModelServer(str(base), MODEL, port=0, poll_seconds=0.2).start()
    try:
        with serving_client.ServingClient(f"localhost:{model_server.port}", MODEL, timeout=30) as c:
            with pytest.raises(serving_client.ModelNotFound, match="no complete version"):
                c.model_status()  # nothing pushed yet: NOT_FOUND, and the server is up
            _push(exported.export_dir, base / "2")
            assert _wait_for(lambda: model_server.model.statuses() != [])
            assert c.model_status() == {2: "AVAILABLE"}
            _push(exported.export_dir, base / "3", complete=False)  # a push still in progress
            (base / "4").mkdir()
            (base / "4" / "saved_model.pb").write_bytes(b"broken")  # a corrupt push
            time.sleep(1.0)  # five polls
            assert c.model_status() == {2: "AVAILABLE", 4: "END"}
            assert c.predict_images(images[:1]).shape == (1, features.NUM_CLASSES)
            shutil.rmtree(base / "4")  # a deleted version is forgotten
            assert _wait_for(lambda: c.model_status() == {2: "AVAILABLE"}, seconds=5)
        # (loading a second good version is the same code path as the first: not repeated here)
    finally:
        model_server.stop()


# --- 13-band models --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported_bands(tmp_path_factory):
    return serving_fixtures.export_model(str(tmp_path_factory.mktemp("push-bands")), modality=features.ALL_BANDS)


@pytest.fixture(scope="module")
def patches():
    return [b for b, _, _ in synthetic.synthetic_band_examples(6, seed=21)]


def test_13_band_signatures_match_the_transform_path_and_take_raw_uint16(exported_bands, patches):
    loaded = tf.saved_model.load(exported_bands.export_dir)
    assert signatures.PREDICT_IMAGES not in loaded.signatures  # a 13-band model takes no JPEGs
    raw_examples = tf.constant(
        [features.make_bands_example(b, 0, "t.tif").SerializeToString() for b in patches])
    transformed = loaded.signatures[signatures.TRANSFORM_FEATURES](examples=raw_examples)[features.TRANSFORMED_IMAGE_KEY]
    expected = exported_bands.model(transformed, training=False).numpy()
    assert np.ptp(expected.argmax(-1)) > 0, "the fixture model must tell patches apart"
    by_bands = loaded.signatures[signatures.PREDICT_BANDS](bands=tf.constant(np.stack(patches)))
    by_examples = loaded.signatures[signatures.SERVING_DEFAULT](examples=raw_examples)
    by_classify = loaded.signatures[signatures.CLASSIFY](inputs=raw_examples)
    for probabilities in (by_bands[signatures.PROBABILITIES], by_examples[signatures.PROBABILITIES],
                          by_classify[signatures.CLASSIFY_SCORES]):
        np.testing.assert_allclose(probabilities.numpy(), expected, atol=1e-5)
    # Transform standardised each band with the analysed statistics, baked into the graph.
    stats = transformed.numpy().reshape(-1, features.NUM_BANDS)
    assert np.abs(stats.mean(0)).max() < 1.0 and 0.2 < stats.std(0).min()
    logs = warmup.read_warmup_requests(exported_bands.export_dir)
    assert [_signature_of(log) for log in logs] == [
        signatures.PREDICT_BANDS, signatures.SERVING_DEFAULT, signatures.CLASSIFY]


def test_client_sends_geotiffs_to_a_13_band_model_and_names_bad_files(exported_bands, patches, tmp_path):
    loaded = tf.saved_model.load(exported_bands.export_dir)
    expected = loaded.signatures[signatures.PREDICT_BANDS](bands=tf.constant(np.stack(patches)))
    paths = []
    for i, bands in enumerate(patches):
        paths.append(str(tmp_path / f"patch_{i}.tif"))
        with open(paths[-1], "wb") as f:
            f.write(features.encode_bands_tiff(bands))
    model_server = serving_server.ModelServer(exported_bands.model_base_path, MODEL, port=0).start()
    try:
        with serving_client.ServingClient(f"localhost:{model_server.port}", MODEL, timeout=30) as c:
            predictions = c.predict_files(paths, top_k_classes=1, batch_size=4)
            assert [p.top[0][0].encode() for p in predictions] == expected[signatures.CLASS_NAME].numpy().tolist()
            (tmp_path / "four_bands.tif").write_bytes(features.encode_bands_tiff(patches[0][..., :4]))
            with pytest.raises(serving_client.ServingError, match="four_bands.tif.*expected 13 Sentinel-2 bands"):
                c.predict_files([str(tmp_path / "four_bands.tif")])
            with pytest.raises(serving_client.ServingError, match="not both in one call"):
                c.predict_files([paths[0], str(tmp_path / "a.jpg")])
            # JPEGs to a 13-band model: the server names the signatures it has.
            with pytest.raises(serving_client.ServingError, match="predict_bands"):
                c.predict_images([b"jpeg"])
    finally:
        model_server.stop()


# --- deployment files ---------------------------------------------------------------------------
def _deployment_args():
    import yaml

    serving_dir = os.path.join(REPO, "serving")
    with open(os.path.join(serving_dir, "docker-compose.yml")) as f:
        compose = yaml.safe_load(f)["services"]["tf-serving"]
    with open(os.path.join(serving_dir, "kubernetes.yaml")) as f:
        deployment = next(yaml.safe_load_all(f))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return compose, container


def test_deployment_files_agree_with_the_model_config_and_the_push_layout():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from pipeline.config import PipelineConfig

    with open(os.path.join(REPO, "serving", "models.config")) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    pipeline = PipelineConfig()
    assert model.name == pipeline.model_name
    # the Pusher's <output>/serving/<model_name> is mounted as /models/<model_name>
    assert model.base_path == f"/models/{os.path.basename(pipeline.serving_dir)}"
    compose, container = _deployment_args()
    for args in (compose["command"], container["args"]):
        assert "--port=8500" in args and "--rest_api_port=8501" in args
        assert "--model_config_file=/config/models.config" in args
        assert "--batching_parameters_file=/config/batching_parameters.txt" in args
    assert any(v.endswith(":/models:ro") for v in compose["volumes"])
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/models", "/config"}
    assert compose["ports"] == ["127.0.0.1:8500:8500", "127.0.0.1:8501:8501"]


def test_batching_parameters_are_ones_tf_serving_accepts():
    """TF Serving refuses to start unless the last allowed batch size is max_batch_size."""
    with open(os.path.join(REPO, "serving", "batching_parameters.txt")) as f:
        text = f.read()
    max_batch = int(re.search(r"max_batch_size \{ value: (\d+) \}", text).group(1))
    allowed = [int(v) for v in re.findall(r"allowed_batch_sizes: (\d+)", text)]
    assert allowed == sorted(allowed) and allowed[-1] == max_batch
    fields = set(re.findall(r"^(\w+)", text, flags=re.M))
    assert fields <= {
        "max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
        "allowed_batch_sizes", "pad_variable_length_inputs",
    }
