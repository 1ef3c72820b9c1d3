"""The real-server gate before the Pusher: TFX's InfraValidator, compiled for Kubeflow and Vertex.

InfraValidator loads the trained model in the official TensorFlow Serving server, waits until the
version is AVAILABLE (TF Serving replays the model's warm-up requests while loading it), then
sends Predict and Classify requests built from real examples. The Pusher takes its blessing, so a
model the real server cannot load or answer is never pushed.

TFX 1.21's Kubeflow Pipelines v2 compiler (used for Kubeflow and Vertex) refuses the
InfraValidator class itself (step_builder.py: 'The component type InfraValidator is not
supported'). `InfraGate` is the same component (InfraValidator's spec, inputs, outputs and
executor) under a class the compiler builds like any other, with one parameter more, `runner`:

- ``kubernetes`` (Kubeflow Pipelines): TFX's KubernetesRunner starts a pod of the official
  ``tensorflow/serving`` image beside the step. KFP v2 pods do not set the KFP_NAMESPACE variable
  that runner reads; the executor takes it from the pod's service-account namespace file.
- ``process`` (Vertex AI Pipelines, whose steps have no Kubernetes cluster): the official
  ``tensorflow_model_server`` binary, copied into the component image from the official image
  (Dockerfile), runs as a child process of the step.

Locally the gate is off: no Docker, no cluster and no tensorflow_model_server here.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional

from tfx import types
from tfx import v1 as tfx
from tfx.components.infra_validator import error_types
from tfx.components.infra_validator import executor as infra_executor
from tfx.components.infra_validator.model_server_runners import base_runner
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import component_spec, standard_artifacts, standard_component_specs
from tfx.utils.model_paths import tf_serving_flavor

from schema import records
from serving import contract

KUBERNETES, PROCESS, RUNNERS = contract.GATE_KUBERNETES, contract.GATE_PROCESS, contract.GATE_RUNNERS
RUNNER_KEY, SERVER_COMMAND_KEY = "runner", "server_command"
TF_SERVING_BINARY = contract.TF_SERVING_BINARY
# Where Kubernetes mounts a pod's namespace (KFP v2 does not export it as KFP_NAMESPACE).
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
# Requests the gate sends: examples of this split, through these signatures (tf.Example inputs).
REQUEST_SPLIT = records.SPLIT_NAMES[-1]
REQUEST_SIGNATURES = (contract.SERVING_DEFAULT, contract.CLASSIFY)
NUM_REQUEST_EXAMPLES = 8


class InfraGateSpec(standard_component_specs.InfraValidatorSpec):
    """InfraValidator's spec plus the runner (and, for `process`, the server binary)."""

    PARAMETERS = {
        **standard_component_specs.InfraValidatorSpec.PARAMETERS,
        RUNNER_KEY: component_spec.ExecutionParameter(type=str),
        SERVER_COMMAND_KEY: component_spec.ExecutionParameter(type=str, optional=True),
    }


class ProcessRunner(base_runner.BaseModelServerRunner):
    """TF Serving as a child process of the step: `command --port=P --model_name=... --model_base_path=...`."""

    def __init__(self, model_path: str, model_name: str, command: str = TF_SERVING_BINARY):
        # <base>/<model name>/<version>: TF Serving's --model_base_path is <base>/<model name>
        # (the official image's entrypoint appends the name to its MODEL_BASE_PATH itself).
        base, name, _ = tf_serving_flavor.parse_model_path(model_path, expected_model_name=model_name)
        self._base_path = os.path.join(base, name)
        self._model_name, self._command = model_name, shlex.split(command)
        self._port: Optional[int] = None
        self._process: Optional[subprocess.Popen] = None
        self._log = tempfile.TemporaryFile(mode="w+")

    def __repr__(self) -> str:
        return f"ProcessRunner({' '.join(self._command)}, model_base_path={self._base_path})"

    def GetEndpoint(self) -> str:
        """The server's gRPC address, localhost:PORT; JobAborted before Start()."""
        if self._port is None:
            raise error_types.JobAborted("the model server was not started")
        return f"localhost:{self._port}"

    def Start(self) -> None:
        """Start tensorflow_model_server on a free local port; JobAborted when the binary cannot run."""
        with socket.socket() as s:
            s.bind(("localhost", 0))
            self._port = s.getsockname()[1]
        try:
            self._process = subprocess.Popen(
                [*self._command, f"--port={self._port}", f"--model_name={self._model_name}",
                 f"--model_base_path={self._base_path}"],
                stdout=self._log, stderr=subprocess.STDOUT,
            )
        except OSError as err:
            raise error_types.JobAborted(
                f"cannot start {self._command[0]!r} ({err.strerror}): the component image needs the "
                "tensorflow_model_server binary (see the Dockerfile)"
            ) from None

    def WaitUntilRunning(self, deadline: float) -> None:
        """Return once the server accepts connections; JobAborted if it exits, DeadlineExceeded at `deadline`."""
        process, port = self._process, self._port
        if process is None or port is None:
            raise error_types.JobAborted("the model server was not started")
        while time.time() < deadline:
            if process.poll() is not None:
                raise error_types.JobAborted(f"the model server exited with code {process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("localhost", port), timeout=1):
                return
            time.sleep(0.5)
        raise error_types.DeadlineExceeded("the model server did not open its port in time")

    def GetLogs(self) -> Optional[str]:
        """The last 20,000 characters of the server's output, None when it wrote nothing."""
        self._log.seek(0)
        return self._log.read()[-20_000:] or None

    def Stop(self) -> None:
        """Terminate the server if it runs (killed if it has not exited 20 s later)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()


def checked_runner(runner: str) -> str:
    """`runner` when it is one the gate knows; ValueError naming them otherwise."""
    if runner not in RUNNERS:
        raise ValueError(f"infra gate runner {runner!r} is not one of {', '.join(RUNNERS)}")
    return runner


def set_kfp_v2_environment(environ=os.environ, namespace_file: str = SERVICE_ACCOUNT_NAMESPACE) -> None:
    """What TFX's KubernetesRunner needs (KFP_NAMESPACE, KFP_POD_NAME) on a Kubeflow Pipelines v2 pod.

    Which exports KFP_POD_NAME only; a clear error outside Kubernetes.
    """
    if "KFP_NAMESPACE" not in environ and os.path.exists(namespace_file):
        with open(namespace_file) as f:
            environ["KFP_NAMESPACE"] = f.read().strip()
    if "KFP_POD_NAME" not in environ and "HOSTNAME" in environ:
        environ["KFP_POD_NAME"] = environ["HOSTNAME"]  # a pod's host name is its name
    if not environ.get("KFP_NAMESPACE") or not environ.get("KFP_POD_NAME"):
        raise RuntimeError(
            "the infra gate's kubernetes runner starts a TF Serving pod beside this step, so it must run "
            "in a Kubeflow Pipelines pod (no Kubernetes namespace found here); on Vertex AI use "
            "--infra-gate process, locally --infra-gate off"
        )


class Executor(infra_executor.Executor):
    """InfraValidator's executor with the runner chosen by the `runner` parameter."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """Validate the model with the runner of the `runner` parameter (kubernetes or process)."""
        runner = checked_runner(exec_properties.get(RUNNER_KEY) or KUBERNETES)
        if runner == KUBERNETES:
            set_kfp_v2_environment()
            super().Do(input_dict, output_dict, exec_properties)
            return
        command = exec_properties.get(SERVER_COMMAND_KEY) or TF_SERVING_BINARY

        def process_runner(model_path, serving_binary, serving_spec):
            return ProcessRunner(model_path, serving_spec.model_name, command)

        # InfraValidator's executor picks its runner in this module-level function; the process
        # runner is the one platform it does not know.
        original = infra_executor._create_model_server_runner
        infra_executor._create_model_server_runner = process_runner
        try:
            super().Do(input_dict, output_dict, exec_properties)
        finally:
            infra_executor._create_model_server_runner = original


class InfraGate(base_component.BaseComponent):
    """InfraValidator under a class the Kubeflow v2 compiler builds (see the module docstring)."""

    SPEC_CLASS = InfraGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model: types.BaseChannel, examples: types.BaseChannel, model_name: str, runner: str,
                 server_command: Optional[str] = None):
        runner = checked_runner(runner)
        super().__init__(spec=InfraGateSpec(
            model=model,
            examples=examples,
            blessing=types.Channel(type=standard_artifacts.InfraBlessing),
            serving_spec=serving_spec(model_name, runner),
            validation_spec=tfx.proto.ValidationSpec(max_loading_time_seconds=600, num_tries=2),
            request_spec=request_spec(),
            runner=runner,
            server_command=server_command,
        ))


def serving_spec(model_name: str, runner: str) -> tfx.proto.ServingSpec:
    """The official tensorflow/serving image (binary) serving `model_name`."""
    spec = tfx.proto.ServingSpec(
        tensorflow_serving=tfx.proto.TensorFlowServing(tags=[contract.TF_SERVING_VERSION]), model_name=model_name)
    if runner == KUBERNETES:
        spec.kubernetes.SetInParent()
    return spec


def request_spec() -> tfx.proto.RequestSpec:
    """Predict (serving_default) and Classify requests of real tf.Examples from the test split."""
    return tfx.proto.RequestSpec(
        tensorflow_serving=tfx.proto.TensorFlowServingRequestSpec(signature_names=list(REQUEST_SIGNATURES)),
        split_name=REQUEST_SPLIT,
        num_examples=NUM_REQUEST_EXAMPLES,
    )
