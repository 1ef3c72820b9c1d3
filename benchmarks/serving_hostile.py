"""The hostile requests of issue 26 against a `serving.server` subprocess (batching off, the
default limits), with the server's memory before and after each, and a burst of 64 REST clients.

    PYTHONPATH=$PWD python benchmarks/serving_hostile.py [--model-base-path <push dir>/eurosat]

Memory is the server's VmRSS (now) and VmHWM (its peak so far) from /proc/<pid>/status, read
before the first case and after each one. The cases, in this order (sizes are flags, so the same
script can be run smaller against a server that has no bounds):

1. REST :predict of N ``{"b64": <1x1 PNG>}`` instances (--png-rows, 100,000: a 10 MB body);
2. REST :predict of a body of ``"a"`` strings (--a-megabytes, 60 MB);
3. gRPC Predict of N 1x1 PNGs (--grpc-rows, 5,000: 355 KB);
4. REST POST with ``Content-Length: -1`` streaming --stream-megabytes (300) of JSON-ish bytes;
5. REST POST of a chunked body of --stream-megabytes in 1 MB chunks.

Then 64 threads open a connection each at the same moment and send one single-image REST
:predict; every request must be answered 200 (none lost, none reset).

Without --model-base-path it exports the tests' tiny untrained model into a temporary folder.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BURST = 64


def png_1x1() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    return buffer.getvalue()


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, MB."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_server(base: str) -> tuple[subprocess.Popen, int, int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--model-base-path", base, "--model-name", "eurosat",
         "--port", "0", "--rest_api_port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        match = re.search(r"REST on \S+:(\d+).* on \S+:(\d+)$", line.strip())
        if match:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, int(match.group(2)), int(match.group(1))
    raise RuntimeError("the server did not start")


def http(port: int, head: bytes, body_chunks, timeout: float = 600) -> str:
    """Send a request head and body pieces; the reply's status line and start of its body (or
    what happened to the connection).
    """
    with socket.create_connection(("localhost", port), timeout=timeout) as s:
        try:
            s.sendall(head)
            for chunk in body_chunks:
                s.sendall(chunk)
            s.shutdown(socket.SHUT_WR)
        except OSError as err:  # the server answered and closed while we were still sending
            sent = f"(sending stopped: {err.strerror})"
        else:
            sent = ""
        reply = b""
        try:
            while (data := s.recv(65536)):
                reply += data
        except OSError as err:
            reply += f"(connection: {err.strerror})".encode()
    status = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    body = reply.split(b"\r\n\r\n", 1)[-1][:160].decode(errors="replace")
    return f"{status} {sent} {body}".strip()


def post(port: int, body: bytes) -> str:
    head = (f"POST /v1/models/eurosat:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    return http(port, head, [body])


def stream(megabytes: int):
    chunk = b"[" + b"1," * (512 * 1024 - 1) + b"1]"[:1]
    for _ in range(megabytes):
        yield chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-base-path")
    parser.add_argument("--png-rows", type=int, default=100_000)
    parser.add_argument("--a-megabytes", type=float, default=60)
    parser.add_argument("--grpc-rows", type=int, default=5_000)
    parser.add_argument("--stream-megabytes", type=int, default=300)
    args = parser.parse_args()
    base = args.model_base_path
    if base is None:
        from tests import serving_fixtures

        base = serving_fixtures.export_model(tempfile.mkdtemp(prefix="hostile-")).model_base_path
    process, grpc_port, rest_port = start_server(base)
    png = png_1x1()
    try:
        rss, peak = memory_mb(process.pid)
        print(f"idle server: VmRSS {rss:.0f} MB, VmHWM {peak:.0f} MB")

        def case(name, run):
            before = memory_mb(process.pid)
            started = time.time()
            outcome = run()
            time.sleep(0.5)
            after = memory_mb(process.pid)
            print(f"{name}: {time.time() - started:.1f} s; VmRSS {before[0]:.0f} -> {after[0]:.0f} MB, "
                  f"VmHWM {before[1]:.0f} -> {after[1]:.0f} MB (+{after[1] - before[1]:.0f}); {outcome[:200]}")

        instance = {"b64": base64.b64encode(png).decode()}
        rows_body = json.dumps({"signature_name": "predict_images", "instances": [instance] * args.png_rows}).encode()
        case(f"REST {args.png_rows} 1x1 PNGs ({len(rows_body) / 1e6:.1f} MB body)", lambda: post(rest_port, rows_body))
        count = int(args.a_megabytes * 1e6 / 4)
        a_body = b'{"signature_name": "predict_images", "instances": [' + b'"a",' * (count - 1) + b'"a"]}'
        case(f'REST {len(a_body) / 1e6:.0f} MB of "a" strings', lambda: post(rest_port, a_body))

        def grpc_rows():
            import grpc
            from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
            from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

            request = predict_pb2.PredictRequest()
            request.model_spec.name, request.model_spec.signature_name = "eurosat", "predict_images"
            request.inputs["images"].CopyFrom(tensor_pb2.TensorProto(
                dtype=types_pb2.DT_STRING, string_val=[png] * args.grpc_rows,
                tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": args.grpc_rows}])))
            with grpc.insecure_channel(f"localhost:{grpc_port}") as channel:
                try:
                    prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=600)
                    return "answered"
                except grpc.RpcError as err:
                    return f"{err.code().name}: {err.details()}"
        case(f"gRPC {args.grpc_rows} 1x1 PNGs", grpc_rows)
        head = (b"POST /v1/models/eurosat:predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n"
                b"Connection: close\r\n\r\n")
        case(f"REST Content-Length -1, {args.stream_megabytes} MB streamed",
             lambda: http(rest_port, head, stream(args.stream_megabytes)))

        def chunked():
            for chunk in stream(args.stream_megabytes):
                yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
            yield b"0\r\n\r\n"
        head = (b"POST /v1/models/eurosat:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n")
        case(f"REST chunked, {args.stream_megabytes} MB", lambda: http(rest_port, head, chunked()))

        from schema.example_data import synthetic

        jpeg = next(iter(synthetic.synthetic_examples(1, seed=3)))[0]
        one = json.dumps({"signature_name": "predict_images", "instances": [
            {"b64": base64.b64encode(jpeg).decode()}]}).encode()
        barrier, outcomes = threading.Barrier(BURST), []

        def client():
            barrier.wait()
            try:
                outcomes.append(post(rest_port, one).split(" ", 2)[1])
            except OSError as err:
                outcomes.append(f"lost ({err.strerror})")
        threads = [threading.Thread(target=client) for _ in range(BURST)]
        started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        answered = outcomes.count("200")
        print(f"burst: {BURST} REST clients at once, one image each: {answered} answered 200, "
              f"{BURST - answered} lost or failed, in {time.time() - started:.1f} s "
              f"({sorted(set(outcomes))})")
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
