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

from components.transform import preprocessing_fn
from schema import features
from schema.example_data import synthetic
from serving import client as serving_client
from serving import grpc_client, signatures, warmup
from serving import models as serving_models
from serving import server as serving_server
from tests import serving_fixtures

MODEL = serving_fixtures.MODEL_NAME
DEV_SERVER_MAX_MESSAGE = 4 * 1024 * 1024  # the subprocess's limit: the over-size test exceeds it
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    assert serving_models.complete_versions(base) == {1: exported.export_dir}
    logs = warmup.read_warmup_requests(exported.export_dir)
    kinds = [(log.WhichOneof("log_type"), _signature_of(log)) for log in logs]
    assert kinds == [
        ("predict_log", signatures.PREDICT_IMAGES),
        ("predict_log", signatures.SERVING_DEFAULT),
        ("classify_log", signatures.CLASSIFY),
    ]
    signature_defs = serving_models.read_signature_defs(exported.export_dir)
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
    assert serving_models.complete_versions(str(tmp_path)) == {1: str(tmp_path / "1")}
    assert serving_models.complete_versions(str(tmp_path / "missing")) == {}


# --- servers ------------------------------------------------------------------------------------
BATCHING_PARAMETERS = os.path.join(REPO, "serving", "batching_parameters.txt")
REST_PORTS = {}  # gRPC address -> REST port of the dev servers started here


def _start_dev_server(base_path, *extra):
    """serving.server over base_path, with batching and REST on (as the production files run it)."""
    command = [
        sys.executable, "-m", "serving.server", "--model-base-path", base_path, "--model-name", MODEL,
        "--port", "0", "--max-message-bytes", str(DEV_SERVER_MAX_MESSAGE), "--rest_api_port", "0",
        "--enable_batching", "--batching_parameters_file", BATCHING_PARAMETERS,
        "--tensorflow_intra_op_parallelism", "1", *extra,
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    for line in process.stdout:  # "serving model ... on host:port" once loaded and listening
        output.append(line)
        match = re.search(r"^serving models? .* on (\S+):(\d+)$", line.strip())
        if match:
            # keep draining the server's log so it never blocks on a full pipe
            threading.Thread(target=process.stdout.read, daemon=True).start()
            address = f"localhost:{match.group(2)}"
            REST_PORTS[address] = int(re.search(r"REST on \S+:(\d+)", line).group(1))
            assert "TensorFlow threads: intra-op 1," in line, line  # the flag took effect
            return process, address
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
    with grpc_client.ServingClient(address, MODEL, timeout=2) as c:
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
    with grpc_client.ServingClient(server[1], MODEL) as c:
        probabilities = c.predict_images(images, batch_size=4)  # 3 requests: 4 + 4 + 2
        classified = c.classify_images(images[:3])
    expected = loaded.signatures[signatures.PREDICT_IMAGES](images=tf.constant(images))[signatures.PROBABILITIES]
    np.testing.assert_allclose(probabilities, expected.numpy(), atol=1e-5)
    for row, scores in zip(classified, expected.numpy()[:3]):
        assert set(row) == set(features.CLASS_NAMES)
        np.testing.assert_allclose([row[n] for n in features.CLASS_NAMES], scores, atol=1e-5)


def test_client_status_and_metadata(server):
    with grpc_client.ServingClient(server[1], MODEL) as c:
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


def _run_clients(worker, clients: int) -> float:
    """worker(k) for k in range(clients), each on its own thread, all at once; the wall time."""
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.time() - started


def test_load_several_concurrent_clients_zero_errors(server, images):
    """Loopback only; a few thousand small requests from concurrent clients, none may fail."""
    errors, done = [], []

    def worker(offset):
        with grpc_client.ServingClient(server[1], MODEL, timeout=30) as c:
            for i in range(LOAD_REQUESTS_PER_CLIENT):
                try:
                    probabilities = c.predict_images([images[(offset + i) % len(images)]])
                    assert probabilities.shape == (1, features.NUM_CLASSES)
                    done.append(1)
                except Exception as err:  # counted, reported below
                    errors.append(repr(err))

    elapsed = _run_clients(worker, LOAD_CLIENTS)
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
    model_server = serving_fixtures.model_server(model_base_path=str(base), poll_seconds=0.2).start()
    try:
        with grpc_client.ServingClient(f"localhost:{model_server.port}", MODEL, timeout=30) as c:
            with pytest.raises(serving_client.ModelNotFound, match="no complete version"):
                c.model_status()  # nothing pushed yet: NOT_FOUND, and the server is up
            _push(exported.export_dir, base / "2")
            assert _wait_for(lambda: _status_or_none(c) == {2: "AVAILABLE"})  # LOADING meanwhile
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
def loaded_bands(exported_bands):
    return tf.saved_model.load(exported_bands.export_dir)


@pytest.fixture(scope="module")
def patches():
    return [b for b, _, _ in synthetic.synthetic_band_examples(6, seed=21)]


def test_13_band_signatures_match_the_transform_path_and_take_raw_uint16(exported_bands, loaded_bands, patches):
    assert signatures.PREDICT_IMAGES not in loaded_bands.signatures  # a 13-band model takes no JPEGs
    raw_examples = tf.constant(
        [features.make_bands_example(b, 0, "t.tif").SerializeToString() for b in patches])
    transformed = loaded_bands.signatures[signatures.TRANSFORM_FEATURES](examples=raw_examples)[features.TRANSFORMED_IMAGE_KEY]
    expected = exported_bands.model(transformed, training=False).numpy()
    assert np.ptp(expected.argmax(-1)) > 0, "the fixture model must tell patches apart"
    by_bands = loaded_bands.signatures[signatures.PREDICT_BANDS](bands=tf.constant(np.stack(patches)))
    by_examples = loaded_bands.signatures[signatures.SERVING_DEFAULT](examples=raw_examples)
    by_classify = loaded_bands.signatures[signatures.CLASSIFY](inputs=raw_examples)
    for probabilities in (by_bands[signatures.PROBABILITIES], by_examples[signatures.PROBABILITIES],
                          by_classify[signatures.CLASSIFY_SCORES]):
        np.testing.assert_allclose(probabilities.numpy(), expected, atol=1e-5)
    # Transform standardised each band with the analysed statistics, baked into the graph.
    stats = transformed.numpy().reshape(-1, features.NUM_BANDS)
    assert np.abs(stats.mean(0)).max() < 1.0 and 0.2 < stats.std(0).min()
    logs = warmup.read_warmup_requests(exported_bands.export_dir)
    assert [_signature_of(log) for log in logs] == [
        signatures.PREDICT_BANDS, signatures.SERVING_DEFAULT, signatures.CLASSIFY]


def test_client_sends_geotiffs_to_a_13_band_model_and_names_bad_files(exported_bands, loaded_bands, patches, tmp_path):
    expected = loaded_bands.signatures[signatures.PREDICT_BANDS](bands=tf.constant(np.stack(patches)))
    paths = []
    for i, bands in enumerate(patches):
        paths.append(str(tmp_path / f"patch_{i}.tif"))
        with open(paths[-1], "wb") as f:
            f.write(features.encode_bands_tiff(bands))
    # batching off (the default), small bounds: 4 patches are 425,984 bytes
    model_server = serving_fixtures.model_server(model_base_path=exported_bands.model_base_path, max_request_rows=8,
                                                 max_request_decoded_bytes=500_000).start()
    try:
        with grpc_client.ServingClient(f"localhost:{model_server.port}", MODEL, timeout=30) as c:
            predictions = c.predict_files(paths, top_k_classes=1, batch_size=4)
            assert [p.top[0][0].encode() for p in predictions] == expected[signatures.CLASS_NAME].numpy().tolist()
            (tmp_path / "four_bands.tif").write_bytes(features.encode_bands_tiff(patches[0][..., :4]))
            bad, good = c.predict_files([str(tmp_path / "four_bands.tif"), paths[0]], top_k_classes=1)
            assert re.search("four_bands.tif.*expected 13 Sentinel-2 bands", bad.error) and not bad.top
            assert good.error is None and good.top[0][0].encode() == expected[signatures.CLASS_NAME].numpy()[0]
            with pytest.raises(serving_client.ServingError, match="not both in one call"):
                c.predict_files([paths[0], str(tmp_path / "a.jpg")])
            # JPEGs to a 13-band model: the server names the signatures it has.
            with pytest.raises(serving_client.ServingError, match="predict_bands"):
                c.predict_images([b"jpeg"])
            # what the client CLI does with a JPEG: names the file and says what the model takes
            (tmp_path / "a.jpg").write_bytes(b"\xff\xd8 a jpeg")
            with pytest.raises(serving_client.ServingError,
                               match=r"a\.jpg: the model cannot take these files: .*this model takes 13 bands"):
                c.predict_files([str(tmp_path / "a.jpg")])
        # one value repeated over a shape (tf.make_ndarray would build it all), and too many rows
        channel = grpc.insecure_channel(f"localhost:{model_server.port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for rows, message in ((5, "are 532480 bytes once decoded; this server takes at most 500000 per "
                                  "request (--max_request_decoded_bytes)"),
                              (9, "holds 9 rows; this server takes at most 8 per request (--max_request_rows)")):
            request = _request({"bands": _repeated_uint16(7, [rows, *features.BANDS_SHAPE])},
                               signature=signatures.PREDICT_BANDS)
            code, details = _status_of(lambda: stub.Predict(request))  # noqa: B023 - called at once
            assert code == grpc.StatusCode.INVALID_ARGUMENT and message in details, details
        channel.close()
    finally:
        model_server.stop()


def _repeated_uint16(value, shape):
    """A TensorProto of `shape` that holds its one value once (TF repeats it over the shape)."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_UINT16, int_val=[value],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": n} for n in shape]))


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
        assert "--tensorflow_intra_op_parallelism=1" in args  # what the batching parameters are tuned for
    assert any(v.endswith(":/models:ro") for v in compose["volumes"])
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/models", "/config"}
    assert compose["ports"] == ["127.0.0.1:8500:8500", "127.0.0.1:8501:8501"]


def test_batching_parameters_are_ones_tf_serving_accepts():
    """TF Serving refuses to start unless the last allowed batch size is max_batch_size."""
    with open(os.path.join(REPO, "serving", "batching_parameters.txt")) as f:
        text = f.read()
    max_batch = int(re.search(r"max_batch_size \{ value: (\d+) \}", text).group(1))
    allowed = [int(v) for v in re.findall(r"allowed_batch_sizes: (\d+)", text)]
    assert not allowed or (allowed == sorted(allowed) and allowed[-1] == max_batch)
    fields = set(re.findall(r"^(\w+)", text, flags=re.M))
    assert fields <= {
        "max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
        "allowed_batch_sizes", "pad_variable_length_inputs",
    }


# --- faults found by probing ---------------------------------------------------------------------
def _png(width, height):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")  # compresses to a few hundred KB
    return buffer.getvalue()


def _max_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_signatures_refuse_huge_images_from_the_header_before_decoding(loaded, images):
    bomb = _png(10000, 10000)  # ~100 KB on the wire, 1.2 GB as decoded float32 RGB
    example = features.make_example(bomb, 0, "bomb.png").SerializeToString()
    before = _max_rss_mb()
    for call in (
        lambda: loaded.signatures[signatures.PREDICT_IMAGES](images=tf.constant([images[0], bomb])),
        lambda: loaded.signatures[signatures.SERVING_DEFAULT](examples=tf.constant([example])),
        lambda: loaded.signatures[signatures.CLASSIFY](inputs=tf.constant([example])),
        lambda: loaded.signatures[signatures.TRANSFORM_FEATURES](examples=tf.constant([example])),
    ):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"10000x10000 pixels; this model decodes at most"):
            call()
    assert _max_rss_mb() - before < 300, "the image was decoded before it was refused"
    # images within the limit, in every format the decoder takes, still work
    small = [_png(96, 80), images[0]]
    assert loaded.signatures[signatures.PREDICT_IMAGES](images=tf.constant(small))[signatures.PROBABILITIES].shape == (2, 10)


def test_header_sizes_of_every_decodable_format():
    import io

    from PIL import Image

    def encoded(fmt, width, height, mode="RGB"):
        buffer = io.BytesIO()
        Image.new(mode, (width, height)).save(buffer, format=fmt)
        return buffer.getvalue()

    batch = [encoded("JPEG", 64, 48), encoded("PNG", 30, 20), encoded("GIF", 7, 9, "P"), encoded("BMP", 11, 13),
             b"junk", b""]
    assert signatures.header_sizes(tf.constant(batch)).numpy().tolist() == [
        [48, 64], [20, 30], [9, 7], [13, 11], [-1, -1], [-1, -1]]


def test_requests_with_no_rows_say_so(loaded):
    for name, inputs in (
        (signatures.PREDICT_IMAGES, {"images": tf.constant([], tf.string)}),
        (signatures.SERVING_DEFAULT, {"examples": tf.constant([], tf.string)}),
        (signatures.CLASSIFY, {"inputs": tf.constant([], tf.string)}),
    ):
        with pytest.raises(tf.errors.InvalidArgumentError, match="the request holds no .*: send at least one"):
            loaded.signatures[name](**inputs)


def test_client_names_the_bad_files_and_classifies_the_rest(server, images, tmp_path, capsys):
    ok, empty, broken = tmp_path / "ok.jpg", tmp_path / "empty.jpg", tmp_path / "broken.jpg"
    ok.write_bytes(images[0])
    empty.write_bytes(b"")
    broken.write_bytes(b"not a jpeg at all")
    paths = [str(ok), str(empty), str(broken), str(ok)]
    assert serving_client.main(["--server", server[1], "--top-k", "1", *paths]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0::2] == [str(ok), str(ok)]
    errors = captured.err.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {empty}: ") and "is empty" in errors[0]
    assert errors[1].startswith(f"error: {broken}: INVALID_ARGUMENT")


# --- version policy: deleted and late-completed versions ------------------------------------------
def _status_or_none(client):
    """The model's version states, or None while it has none to report (between two versions)."""
    try:
        return client.model_status()
    except serving_client.ModelNotFound:
        return None


def test_deleted_served_version_is_unloaded_and_the_newest_remaining_served(exported, tmp_path, images):
    base = tmp_path / MODEL
    base.mkdir()
    _push(exported.export_dir, base / "1")
    _push(exported.export_dir, base / "2")
    model_server = serving_fixtures.model_server(model_base_path=str(base), poll_seconds=0.2).start()
    try:
        with grpc_client.ServingClient(f"localhost:{model_server.port}", MODEL, timeout=30) as c:
            assert c.model_status() == {2: "AVAILABLE"}
            shutil.rmtree(base / "2")
            assert _wait_for(lambda: _status_or_none(c) == {1: "AVAILABLE"}, seconds=60), _status_or_none(c)
            assert c.predict_images(images[:1]).shape == (1, features.NUM_CLASSES)
            shutil.rmtree(base / "1")
            assert _wait_for(lambda: model_server.model.statuses() == [], seconds=10)
            with pytest.raises(grpc_client.ModelNotFound):
                c.predict_images(images[:1])
    finally:
        model_server.stop()


def test_version_whose_load_failed_is_retried_once_its_files_arrive(exported, tmp_path, images):
    base = tmp_path / MODEL
    (base / "3").mkdir(parents=True)
    # a copy tool that writes saved_model.pb before variables/: the first load fails
    shutil.copy(os.path.join(exported.export_dir, "saved_model.pb"), base / "3" / "saved_model.pb")
    model_server = serving_fixtures.model_server(model_base_path=str(base), poll_seconds=0.2).start()
    try:
        from tensorflow_serving.apis import get_model_status_pb2

        assert [s.state for s in model_server.model.statuses()] == [get_model_status_pb2.ModelVersionStatus.END]
        for name in os.listdir(exported.export_dir):
            source = os.path.join(exported.export_dir, name)
            if os.path.isdir(source):
                shutil.copytree(source, base / "3" / name)
            elif name != "saved_model.pb":
                shutil.copy(source, base / "3" / name)
        with grpc_client.ServingClient(f"localhost:{model_server.port}", MODEL, timeout=30) as c:
            assert _wait_for(lambda: _status_or_none(c) == {3: "AVAILABLE"}, seconds=60), _status_or_none(c)
            assert c.predict_images(images[:1]).shape == (1, features.NUM_CLASSES)
    finally:
        model_server.stop()


def test_versions_to_serve_follows_tf_serving_policies():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    def policy(text):
        return text_format.Parse(text, model_server_config_pb2.ModelConfig())

    on_disk = [1, 3, 7]
    assert serving_models.versions_to_serve(policy(""), on_disk) == {7}
    assert serving_models.versions_to_serve(policy("model_version_policy { latest { num_versions: 2 } }"), on_disk) == {3, 7}
    assert serving_models.versions_to_serve(policy("model_version_policy { all {} }"), on_disk) == {1, 3, 7}
    assert serving_models.versions_to_serve(
        policy("model_version_policy { specific { versions: 1 versions: 5 } }"), on_disk) == {1}
    assert serving_models.versions_to_serve(policy(""), []) == set()


# --- batching ------------------------------------------------------------------------------------
def test_thread_counts_set_too_late_are_refused_in_one_line():
    tf.constant(1.0) + 1.0  # this process has run TensorFlow ops
    current = tf.config.threading.get_intra_op_parallelism_threads()
    with pytest.raises(ValueError, match="only be set before the first model loads; start a new server process"):
        serving_server.set_tensorflow_threads(current + 3, 0)
    serving_server.set_tensorflow_threads(0, 0)  # 0: TensorFlow's own choice, nothing to set


def test_negative_thread_counts_are_refused_by_the_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        serving_server.parse_args(["--model-base-path", "m", "--tensorflow_intra_op_parallelism", "-1"])
    assert exit_.value.code == 2
    assert "must be >= 0" in capsys.readouterr().err


def test_the_production_batching_parameters_parse_and_bad_ones_are_named(tmp_path):
    from serving import batching

    params = batching.read_batching_parameters(os.path.join(REPO, "serving", "batching_parameters.txt"))
    assert (params.max_batch_size, params.batch_timeout_micros, params.num_batch_threads) == (64, 2000, 2)
    assert params.allowed_batch_sizes == () and params.max_enqueued_batches == 100
    assert [params.padded_size(n) for n in (1, 3, 5, 33, 64)] == [1, 3, 5, 33, 64]  # no padding on CPU
    padded = batching.parse_batching_parameters(
        "max_batch_size { value: 64 }\n" + "".join(f"allowed_batch_sizes: {n}\n" for n in (1, 2, 4, 8, 16, 32, 64)))
    assert [padded.padded_size(n) for n in (1, 3, 5, 33, 64)] == [1, 4, 8, 64, 64]
    with pytest.raises(ValueError, match="unknown field 'max_batch'"):
        batching.parse_batching_parameters("max_batch { value: 3 }")
    with pytest.raises(ValueError, match="must increase and end with max_batch_size"):
        batching.parse_batching_parameters("max_batch_size { value: 8 }\nallowed_batch_sizes: 4")
    with pytest.raises(ValueError, match="cannot read the batching parameters file"):
        batching.read_batching_parameters(str(tmp_path / "missing.txt"))


def test_batcher_merges_concurrent_requests_and_keeps_errors_per_request():
    from serving import batching

    calls = []

    def run(inputs):
        x = inputs["x"]
        calls.append(len(x))
        if (x < 0).any():
            raise ValueError(f"negative input among {len(x)} rows")
        return {"y": x * 2}

    batcher = batching.Batcher(batching.BatchingParameters(
        max_batch_size=16, batch_timeout_micros=200_000, num_batch_threads=1, allowed_batch_sizes=(4, 16)))
    results, errors = {}, {}

    def client(i):
        try:
            results[i] = batcher.run("model", run, {"x": np.array([i if i != 5 else -1])})["y"]
        except ValueError as err:
            errors[i] = str(err)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.stop()
    assert set(errors) == {5} and "negative input among 1 rows" in errors[5]
    assert {i: int(r[0]) for i, r in results.items()} == {i: 2 * i for i in range(10) if i != 5}
    assert calls[0] == 16  # the ten requests merged into one batch, padded to an allowed size
    with pytest.raises(batching.BatchingError, match="Task size 17 is larger than maximum input batch size 16"):
        batching.Batcher(batching.BatchingParameters(max_batch_size=16, num_batch_threads=1)).run(
            "model", run, {"x": np.zeros(17)})


BATCHED_CLIENTS = 32
BATCHED_REQUESTS_PER_CLIENT = 40


def test_load_32_clients_with_batching_zero_errors_and_a_bad_image_fails_alone(server, images):
    if server[0] != "serving.server":
        pytest.skip("the dev server's batching; TF Serving's is its own")
    errors, bad_errors, done = [], [], []

    def worker(offset):
        with grpc_client.ServingClient(server[1], MODEL, timeout=60) as c:
            for i in range(BATCHED_REQUESTS_PER_CLIENT):
                if offset == 0 and i % 10 == 0:  # one client sends a bad image now and then
                    try:
                        c.predict_images([b"not an image"])
                        bad_errors.append("accepted")
                    except serving_client.ServingError as err:
                        bad_errors.append(err.code)
                    continue
                try:
                    assert c.predict_images([images[(offset + i) % len(images)]]).shape == (1, features.NUM_CLASSES)
                    done.append(1)
                except Exception as err:  # counted, reported below
                    errors.append(repr(err))

    elapsed = _run_clients(worker, BATCHED_CLIENTS)
    assert not errors, errors[:3]
    assert bad_errors == ["INVALID_ARGUMENT"] * 4
    assert len(done) == BATCHED_CLIENTS * BATCHED_REQUESTS_PER_CLIENT - 4
    print(f"batched load: {len(done)} requests in {elapsed:.1f}s ({len(done) / elapsed:.0f} req/s)")


# --- REST ----------------------------------------------------------------------------------------
def _rest(address, method, path, body=None):
    """(HTTP status, JSON body) of a call to the dev server's REST port."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    url = f"http://localhost:{REST_PORTS[address]}{path}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture()
def dev_server(server):
    if server[0] != "serving.server":
        pytest.skip("REST is checked against the dev server here (TF Serving's is the reference)")
    return server[1]


def _b64(data):
    import base64

    return {"b64": base64.b64encode(data).decode()}


def test_rest_predict_row_and_columnar_and_classify_equal_grpc(dev_server, images):
    with grpc_client.ServingClient(dev_server, MODEL) as c:
        expected = c.predict_images(images[:4])
    status, row = _rest(dev_server, "POST", f"/v1/models/{MODEL}:predict", {
        "signature_name": signatures.PREDICT_IMAGES, "instances": [_b64(i) for i in images[:4]]})
    assert status == 200, row
    np.testing.assert_allclose([p[signatures.PROBABILITIES] for p in row["predictions"]], expected, atol=1e-6)
    assert [p[signatures.CLASS_NAME] for p in row["predictions"]] == [
        features.CLASS_NAMES[i] for i in expected.argmax(-1)]
    status, columnar = _rest(dev_server, "POST", f"/v1/models/{MODEL}/versions/1:predict", {
        "signature_name": signatures.PREDICT_IMAGES, "inputs": {"images": [_b64(i) for i in images[:4]]}})
    assert status == 200, columnar
    np.testing.assert_allclose(columnar["outputs"][signatures.PROBABILITIES], expected, atol=1e-6)
    examples = [features.make_example(i, 0, "x").SerializeToString() for i in images[:2]]
    status, by_examples = _rest(dev_server, "POST", f"/v1/models/{MODEL}:predict",
                                {"instances": [{"examples": _b64(e)} for e in examples]})  # serving_default
    np.testing.assert_allclose(by_examples["predictions"], expected[:2], atol=1e-6)
    status, classified = _rest(dev_server, "POST", f"/v1/models/{MODEL}:classify", {
        "signature_name": signatures.CLASSIFY, "examples": [{features.IMAGE_KEY: _b64(i)} for i in images[:4]]})
    assert status == 200, classified
    for row_result, scores in zip(classified["result"], expected):
        assert [label for label, _ in row_result] == list(features.CLASS_NAMES)
        np.testing.assert_allclose([score for _, score in row_result], scores, atol=1e-6)


def test_rest_status_metadata_and_tf_serving_error_codes(dev_server, images):
    assert _rest(dev_server, "GET", f"/v1/models/{MODEL}") == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
    status, metadata = _rest(dev_server, "GET", f"/v1/models/{MODEL}/metadata")
    assert status == 200 and metadata["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    signature_defs = metadata["metadata"]["signature_def"]["signature_def"]
    assert signature_defs[signatures.CLASSIFY]["method_name"] == signatures.CLASSIFY_METHOD_NAME
    predict = f"/v1/models/{MODEL}:predict"
    cases = [
        ("GET", "/v1/models/nope", None, 404, "'nope'"),
        ("GET", f"/v1/models/{MODEL}/versions/9", None, 404, "version 9"),
        ("POST", predict, b"{not json", 400, "JSON Parse error"),
        ("POST", predict, {"signature_name": "nope", "instances": [1]}, 400, '"nope" not found'),
        ("POST", predict, {"signature_name": signatures.PREDICT_IMAGES, "instances": [_b64(b"junk")]}, 400,
         "image file format"),
        ("POST", predict, {"signature_name": signatures.PREDICT_IMAGES, "instances": []}, 400, "holds no images"),
        ("POST", predict, {"signature_name": signatures.PREDICT_IMAGES}, 400, "'instances' or 'inputs'"),
        ("POST", predict, {"signature_name": signatures.PREDICT_IMAGES, "instances": [{"b64": "%%"}]}, 400, "base64"),
        ("POST", f"/v1/models/{MODEL}/labels/stable:predict", {"instances": []}, 400, "Unrecognized servable version label"),
        ("POST", f"/v1/models/{MODEL}:explode", {}, 400, "Malformed request"),
    ]
    for method, path, body, code, message in cases:
        status, reply = _rest(dev_server, method, path, body)
        assert (status, list(reply)) == (code, ["error"]), (path, body, status, reply)
        assert message in reply["error"], (path, reply)


def test_curl_and_the_rest_client_get_the_grpc_classes(dev_server, images, tmp_path):
    import json

    paths = []
    for i, image in enumerate(images[:3]):
        paths.append(str(tmp_path / f"p{i}.jpg"))
        open(paths[-1], "wb").write(image)
    with grpc_client.ServingClient(dev_server, MODEL) as c:
        grpc_top = [p.top[0][0] for p in c.predict_files(paths, top_k_classes=1)]
    if shutil.which("curl"):
        body = tmp_path / "body.json"
        body.write_text(json.dumps({"signature_name": signatures.PREDICT_IMAGES, "instances": [_b64(i) for i in images[:3]]}))
        out = subprocess.run(
            ["curl", "-s", "-d", f"@{body}", f"http://localhost:{REST_PORTS[dev_server]}/v1/models/{MODEL}:predict"],
            capture_output=True, text=True, check=True).stdout
        assert [p[signatures.CLASS_NAME] for p in json.loads(out)["predictions"]] == grpc_top
    # the REST client CLI in a fresh interpreter: the same classes, and TensorFlow never imported
    script = (
        "import sys; from serving import client\n"
        f"code = client.main(['--rest', '--server', 'localhost:{REST_PORTS[dev_server]}', '--top-k', '1', *{paths!r}])\n"
        "assert 'tensorflow' not in sys.modules and 'grpc' not in sys.modules, 'the REST path imported TF'\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1::2] and [line.split()[0] for line in result.stdout.splitlines()[1::2]] == grpc_top


def test_rest_client_names_bad_files_and_reports_a_server_that_is_down(dev_server, images, tmp_path):
    from serving.rest_client import RestClient

    ok, broken = tmp_path / "ok.jpg", tmp_path / "broken.jpg"
    ok.write_bytes(images[0])
    broken.write_bytes(b"nope")
    with RestClient(f"localhost:{REST_PORTS[dev_server]}", MODEL) as c:
        assert c.model_status() == {1: "AVAILABLE"}
        good, bad = c.predict_files([str(ok), str(broken)], top_k_classes=2)
        assert good.error is None and len(good.top) == 2
        assert bad.error.startswith("INVALID_ARGUMENT") and not bad.top
    with pytest.raises(serving_client.ServerUnavailable, match="no model server answers"):
        RestClient(f"localhost:{_free_port()}", MODEL, retries=1).model_status()
    with pytest.raises(serving_client.ModelNotFound):
        RestClient(f"localhost:{REST_PORTS[dev_server]}", "nope").model_status()


def test_both_clients_answer_the_same_types_and_values(dev_server, images, tmp_path):
    """One result type for the siblings: the same request to gRPC and REST gets equal answers."""
    from serving.client_common import Prediction, Signature
    from serving.rest_client import RestClient

    paths = []
    for i, image in enumerate(images[:3]):
        paths.append(str(tmp_path / f"p{i}.jpg"))
        open(paths[-1], "wb").write(image)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    paths.append(str(tmp_path / "bad.jpg"))
    answers = []
    with grpc_client.ServingClient(dev_server, MODEL) as g, RestClient(f"localhost:{REST_PORTS[dev_server]}", MODEL) as r:
        for c in (g, r):
            answers.append((c.predict_images(images[:3], batch_size=2), c.classify_images(images[:2]),
                            c.predict_files(paths, top_k_classes=2), c.model_metadata(), c.model_status()))
    (g_probs, g_classes, g_files, g_meta, g_status), (r_probs, r_classes, r_files, r_meta, r_status) = answers
    assert isinstance(r_probs, np.ndarray) and (r_probs.dtype, r_probs.shape) == (g_probs.dtype, g_probs.shape)
    np.testing.assert_allclose(r_probs, g_probs, atol=1e-6)
    assert [sorted(row) for row in r_classes] == [sorted(row) for row in g_classes] == [sorted(features.CLASS_NAMES)] * 2
    for got, want in zip(r_files, g_files):
        assert type(got) is type(want) is Prediction and got.source == want.source
        assert [name for name, _ in got.top] == [name for name, _ in want.top]
        assert (got.error is None) == (want.error is None) and (got.probabilities is None) == (want.probabilities is None)
    np.testing.assert_allclose(r_files[0].probabilities, g_probs[0], atol=1e-6)
    assert r_files[-1].error.startswith("INVALID_ARGUMENT") and g_files[-1].error.startswith("INVALID_ARGUMENT")
    assert r_meta == g_meta and all(type(s) is Signature for s in g_meta.values())
    assert r_status == g_status == {1: "AVAILABLE"}


def test_both_servers_take_the_same_constructor_arguments():
    """One constructor shape: ModelServer and RestServer take (core, settings), nothing positional else."""
    import inspect

    from serving import rest

    grpc_params = list(inspect.signature(serving_server.ModelServer).parameters.values())
    assert grpc_params == list(inspect.signature(rest.RestServer).parameters.values())
    assert [(p.name, p.annotation) for p in grpc_params] == [("core", "ServingCore"), ("settings", "ServerSettings")]


def test_server_flags_are_the_settings_fields_in_both_spellings(capsys):
    from serving.settings import ServerSettings

    assert serving_server.parse_args(["--model-base-path", "m"]) == ServerSettings(model_base_path="m")
    with pytest.raises(SystemExit):
        serving_server.parse_args(["--help"])
    help_text = capsys.readouterr().out
    for name in ServerSettings.model_fields:
        assert f"--{name}" in help_text and f"--{name.replace('_', '-')}" in help_text, name
    assert serving_server.parse_args(["--model_base_path", "m", "--max-request-rows", "8", "--enable_batching"]) == \
        ServerSettings(model_base_path="m", max_request_rows=8, enable_batching=True)
    with pytest.raises(SystemExit):
        serving_server.parse_args(["--model-base-path", "m", "--max_request_rows", "0"])
    assert capsys.readouterr().err.splitlines()[-1].endswith("error: --max_request_rows must be >= 1, got 0")


# --- model config files --------------------------------------------------------------------------
def test_production_models_config_runs_locally_over_a_push_directory(tmp_path):
    config = serving_models.read_model_config(os.path.join(REPO, "serving", "models.config"))
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path) == (MODEL, "/models/eurosat")
    args = serving_server.parse_args(["--model_config_file", os.path.join(REPO, "serving", "models.config"),
                                      "--model-base-path", str(tmp_path), "--port", "0"])
    model_server = serving_server.server_from_settings(args)
    assert model_server.model.base_path == str(tmp_path)
    model_server.stop()
    bad = tmp_path / "bad.config"
    bad.write_text("model_config_list { config { name: 'x' } }")
    with pytest.raises(ValueError, match="needs a name and a base_path"):
        serving_models.read_model_config(str(bad))
    bad.write_text("model_config_list { nonsense: 1 }")
    with pytest.raises(ValueError, match="not a ModelServerConfig"):
        serving_models.read_model_config(str(bad))


def test_model_config_with_pinned_versions_and_labels(exported, tmp_path, images):
    base = tmp_path / MODEL
    base.mkdir()
    for version in (1, 2, 3):
        _push(exported.export_dir, base / str(version))
    config_file = tmp_path / "models.config"
    config_file.write_text(
        "model_config_list { config { name: 'eurosat' base_path: 'eurosat' model_platform: 'tensorflow'\n"
        "  model_version_policy { specific { versions: 1 versions: 2 } }\n"
        "  version_labels { key: 'stable' value: 1 } version_labels { key: 'canary' value: 2 } } }\n")
    # base_path relative to the file
    model_server = serving_fixtures.model_server(model_config_file=str(config_file), rest_api_port=0).start()
    try:
        assert [s.version for s in model_server.model.statuses()] == [1, 2]
        address = f"localhost:{model_server.port}"
        channel = grpc.insecure_channel(address)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = _request({"images": tf.make_tensor_proto(images[:1], dtype=tf.string)})
        request.model_spec.version_label = "canary"
        assert stub.Predict(request).model_spec.version.value == 2
        request.model_spec.version_label = "stable"
        assert stub.Predict(request).model_spec.version.value == 1
        request.model_spec.version_label = "nope"
        code, details = _status_of(lambda: stub.Predict(request))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "Unrecognized servable version label" in details
        request.model_spec.ClearField("version_label")
        assert stub.Predict(request).model_spec.version.value == 2  # no version named: the newest served
        channel.close()
        REST_PORTS[address] = model_server.rest_port
        assert _rest(address, "GET", f"/v1/models/{MODEL}/labels/stable")[1]["model_version_status"][0]["version"] == "1"
        status, reply = _rest(address, "POST", f"/v1/models/{MODEL}/labels/canary:predict", {
            "signature_name": signatures.PREDICT_IMAGES, "instances": [_b64(images[0])]})
        assert status == 200 and len(reply["predictions"]) == 1
    finally:
        model_server.stop()


# --- hostile input and unlucky operators (issues 20 and 26) ------------------------------------------
def _modelless_rest(tmp_path, **kwargs):
    """A RestServer over a core whose model has no version: HTTP and JSON checks need no model."""
    from serving import rest
    from serving.core import ServingCore
    from serving.settings import ServerSettings

    settings = ServerSettings(model_base_path=str(tmp_path / "no-versions"), model_name=MODEL, rest_api_port=0,
                              **kwargs)
    return rest.RestServer(ServingCore.from_settings(settings), settings)


def _http(port, raw: bytes, timeout=10.0):
    """(status, the whole reply) of raw bytes sent on a fresh connection (the server closes it)."""
    import socket

    with socket.create_connection(("localhost", port), timeout=timeout) as s:
        s.sendall(raw)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < _content_length(reply):
            data = s.recv(65536)
            if not data:
                break
            reply += data
    return int(reply.split(b" ", 2)[1]), reply


def _content_length(reply: bytes) -> int:
    match = re.search(rb"Content-Length: (\d+)", reply)
    return int(match.group(1)) if match else 0


def _post(path, headers, body=b""):
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n").encode() + body


def test_ports_taken_by_another_server_are_refused_at_once_naming_them(tmp_path):
    import socket

    first = serving_fixtures.model_server(model_base_path=str(tmp_path / "none"))
    try:
        with pytest.raises(OSError, match=rf"cannot listen on localhost:{first.port} for gRPC \(--port\)"):
            serving_fixtures.model_server(model_base_path=str(tmp_path / "none"), port=first.port)
    finally:
        first.stop()
    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=rf"cannot listen on localhost:{port} for REST \(--rest_api_port\)"):
            serving_fixtures.model_server(model_base_path=str(tmp_path / "none"), rest_api_port=port)


def test_rest_bodies_get_the_http_answers_and_chunked_ones_the_same_limit(tmp_path):
    server = _modelless_rest(tmp_path, max_message_bytes=1000)
    server.start()
    try:
        predict = f"/v1/models/{MODEL}:predict"
        body = b'{"instances": [1]}'
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        cases = [
            ("Content-Length: -1\r\n", b"x" * 100, 400, b"Content-Length must be a number"),
            ("Content-Length: abc\r\n", b"", 400, b"Content-Length must be a number"),
            ("Content-Length: 1e3\r\n", b"", 400, b"Content-Length must be a number"),
            ("", b"", 411, b"needs a Content-Length"),
            ("Content-Length: 1001\r\n", b"", 413, b"over this server's limit of 1000 bytes (--max_message_bytes)"),
            ("Transfer-Encoding: chunked\r\n", chunked, 404, b"no complete version"),  # read, parsed, routed
            ("Transfer-Encoding: chunked\r\n", b"3e9\r\n" + b"x" * 1001, 413, b"chunked request body is over"),
            ("Transfer-Encoding: chunked\r\n", b"zz\r\n", 400, b"malformed chunk size"),
            ("Transfer-Encoding: gzip\r\n", b"", 501, b"not supported"),
        ]
        for headers, sent, status, message in cases:
            got, reply = _http(server.port, _post(predict, headers, sent))
            assert (got, message in reply) == (status, True), (headers, reply)
        # a chunked body is consumed: the next request on the same connection is answered on its own
        import socket

        with socket.create_connection(("localhost", server.port), timeout=10) as s:
            s.sendall(_post(predict, "Transfer-Encoding: chunked\r\n", chunked).replace(b"close", b"keep-alive")
                      + f"GET /v1/models/{MODEL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            replies = b""
            while (data := s.recv(65536)):
                replies += data
        assert re.findall(rb"HTTP/1.1 (\d+)", replies) == [b"404", b"404"], replies
    finally:
        server.stop()


def test_rest_client_errors_in_the_json_are_400_not_500(tmp_path):
    server = _modelless_rest(tmp_path)
    server.start()
    try:
        deep = b'{"instances": ' + b"[" * 3000 + b"]" * 3000 + b"}"
        cases = [
            (":predict", deep, b"nested more than 32 deep"),
            (":predict", b'{"signature_name": ["a"], "instances": [1]}', b"'signature_name' must be a string"),
            (":predict", b'{"signature_name": {"a": 1}, "instances": [1]}', b"'signature_name' must be a string"),
            (":classify", b'{"signature_name": "classify", "examples": [{"n": 1180591620717411303424}]}',
             b"outside int64"),
        ]
        for verb, body, message in cases:
            got, reply = _http(server.port, _post(f"/v1/models/{MODEL}{verb}", f"Content-Length: {len(body)}\r\n", body))
            assert (got, message in reply) == (400, True), reply[-300:]
    finally:
        server.stop()


def test_rest_idle_and_half_open_connections_time_out(tmp_path):
    import socket

    server = _modelless_rest(tmp_path, rest_api_timeout_in_ms=300)
    server.start()
    try:
        for sent in (b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GET /v1/models/eurosat HTTP/1.1\r\n"):
            with socket.create_connection(("localhost", server.port), timeout=5) as s:
                s.sendall(sent)  # nothing, a TLS hello, half a request
                started = time.time()
                assert s.recv(100) == b"", sent  # closed by the server, not by our 5 s timeout
                assert time.time() - started < 4
    finally:
        server.stop()


BURST = 64


def test_rest_burst_of_64_connections_loses_no_request(tmp_path):
    import socket

    server = _modelless_rest(tmp_path)
    try:
        # 64 connections arrive before the server accepts any: all must wait in the listen backlog
        waiting = [socket.create_connection(("localhost", server.port), timeout=2) for _ in range(BURST)]
        assert _accept_queue(server.port) in (BURST, None)  # the kernel holds them all, none dropped
        server.start()
        statuses = []
        for s in waiting:
            with s:
                s.settimeout(30)
                s.sendall(f"GET /v1/models/{MODEL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                statuses.append(s.recv(100).split(b" ", 2)[1])
        assert statuses == [b"404"] * BURST  # the model has no version: each got its answer
        # and 64 clients at once, each connecting and asking once
        barrier, answers = threading.Barrier(BURST), []

        def client(_):
            barrier.wait()
            answers.append(_http(server.port, f"GET /v1/models/{MODEL} HTTP/1.1\r\nHost: x\r\n"
                                              "Connection: close\r\n\r\n".encode(), timeout=30)[0])

        _run_clients(client, BURST)
        assert answers == [404] * BURST
    finally:
        server.stop()


def _accept_queue(port):
    """Connections waiting to be accepted on a listening port (Linux: /proc/net/tcp's rx_queue)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            for line in open(table).read().splitlines()[1:]:
                fields = line.split()
                if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
                    return int(fields[4].split(":")[1], 16)
    return None


def _fake_load(seconds):
    def load(cls, name, version, path):
        time.sleep(seconds)
        return serving_models.ModelVersion(name, version, path, loaded=None, signature_defs={})
    return classmethod(load)


def _fake_versions(base, *versions):
    for version in versions:
        (base / str(version)).mkdir(parents=True)
        (base / str(version) / "saved_model.pb").write_bytes(b"x")


def test_deleting_the_served_version_leaves_no_gap(tmp_path, monkeypatch):
    monkeypatch.setattr(serving_models.ModelVersion, "load", _fake_load(0.5))
    _fake_versions(tmp_path, 1, 2)
    model = serving_models.ServedModel(serving_models.single_model_config(MODEL, str(tmp_path)).model_config_list.config[0])
    model.poll()
    assert model.get().version == 2
    shutil.rmtree(tmp_path / "2")
    poll = threading.Thread(target=model.poll)
    poll.start()
    answered = []
    while poll.is_alive():  # version 1 loading: version 2 (in memory) keeps answering
        answered.append(model.get().version)
        time.sleep(0.01)
    poll.join()
    assert set(answered) == {2} and len(answered) > 10
    assert model.get().version == 1 and [s.version for s in model.statuses()] == [1]
    _fake_versions(tmp_path, 2)  # pushed again: loaded anew, then served
    model.poll()
    assert model.get().version == 2 and [s.version for s in model.statuses()] == [2]


def test_entries_that_are_no_version_are_ignored_and_logged_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(serving_models.ModelVersion, "load", _fake_load(0))
    _fake_versions(tmp_path, 1)
    for name in ("²", "٣", "tmp-3", "9" * 30):
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(b"x")
    model = serving_models.ServedModel(serving_models.single_model_config(MODEL, str(tmp_path)).model_config_list.config[0])
    with caplog.at_level("WARNING", logger="serving.server"):
        model.poll()
        _fake_versions(tmp_path, 2)
        model.poll()
    assert model.get().version == 2
    ignored = [r.getMessage() for r in caplog.records if "not a version" in r.getMessage()]
    assert len(ignored) == 4 and any("'²'" in m for m in ignored), ignored


def test_a_model_with_nothing_to_serve_says_so_once(tmp_path, caplog):
    from google.protobuf import text_format

    missing = serving_models.ServedModel(
        serving_models.single_model_config(MODEL, str(tmp_path / "nope")).model_config_list.config[0])
    _fake_versions(tmp_path / "m", 1)
    config = serving_models.single_model_config(MODEL, str(tmp_path / "m")).model_config_list.config[0]
    text_format.Parse("model_version_policy { specific {} }", config)
    pinned_to_nothing = serving_models.ServedModel(config)
    with caplog.at_level("WARNING", logger="serving.server"):
        for _ in range(3):
            missing.poll()
            pinned_to_nothing.poll()
    said = [r.getMessage() for r in caplog.records if "No versions of servable" in r.getMessage()]
    assert len(said) == 2, said
    assert f"No versions of servable {MODEL} found under base path {tmp_path / 'nope'} (the folder does not exist)" in said[0]
    assert "that its model_version_policy asks for (specific {" in said[1] and "on disk: 1" in said[1], said[1]


def test_non_utf8_bytes_and_too_many_rows_are_client_errors(dev_server, stub, images):
    import json

    status, reply = _rest(dev_server, "POST", f"/v1/models/{MODEL}:predict", {"instances": [_b64(images[0])]})
    assert status == 400 and "Could not parse example input" in reply["error"], reply
    code, details = _status_of(lambda: stub.Predict(_request(
        {"examples": tf.make_tensor_proto(images[:1], dtype=tf.string)}, signature=signatures.SERVING_DEFAULT)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "Could not parse example input" in details, details
    rows = 257  # one over the default --max_request_rows; each a few bytes: refused before decoding
    too_many = tf.make_tensor_proto([b"x"] * rows, dtype=tf.string)
    code, details = _status_of(lambda: stub.Predict(_request({"images": too_many})))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "holds 257 rows" in details, details
    assert "at most 256 per request (--max_request_rows)" in details
    for verb, body in ((":predict", {"signature_name": signatures.PREDICT_IMAGES, "instances": [_b64(b"x")] * rows}),
                       (":classify", {"signature_name": signatures.CLASSIFY, "examples": [{"n": 1}] * rows})):
        status, reply = _rest(dev_server, "POST", f"/v1/models/{MODEL}{verb}", json.dumps(body).encode())
        assert status == 400 and "(--max_request_rows)" in reply["error"], reply
