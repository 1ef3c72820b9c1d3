"""Query the EuroSAT model on TF Serving (or serving.server), over gRPC or REST.

    python -m serving.client --server localhost:8500 image.jpg [more.png ...]
    python -m serving.client --server localhost:8500 patch.tif [...]     # a 13-band model
    python -m serving.client --rest --server localhost:8501 image.jpg    # REST: no TensorFlow import
    python -m serving.client --server localhost:8500 --status --metadata

Prints the top-k classes with their scores for each file; a file that cannot be read, or that the
model refuses, is named on stderr with the reason, the others are still classified (exit code 1
when any file failed). As a library: serving.grpc_client.ServingClient and
serving.rest_client.RestClient: the same predict_files / predict_images / predict_bands /
predict_pixels / classify_images / model_status / model_metadata, returning the same types
(serving.client_common). The gRPC client (and TensorFlow) is imported only for gRPC.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from serving.client_common import (  # the errors too, for `except serving.client.ServingError`
    DEFAULT_MODEL,
    DEFAULT_REST_SERVER,
    DEFAULT_SERVER,
    FilesClient,
    ModelNotFound,
    Prediction,
    ServerUnavailable,
    ServingError,
    format_predictions,
)
from serving.rest_client import RestClient

__all__ = ["ModelNotFound", "Prediction", "RestClient", "ServerUnavailable", "ServingError", "main", "make_client"]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line's arguments (the server defaults to the gRPC or REST one by --rest)."""
    parser = argparse.ArgumentParser(prog="python -m serving.client",
                                     description="Classify EuroSAT images with a model on TF Serving.")
    parser.add_argument("images", nargs="*", help="JPEG/PNG files, or 13-band GeoTIFFs (.tif) for a 13-band model")
    parser.add_argument("--server", default=None,
                        help=f"host:port of the gRPC endpoint (default {DEFAULT_SERVER}), or http://host:port "
                             f"of the REST API (default with --rest: {DEFAULT_REST_SERVER})")
    parser.add_argument("--rest", action="store_true", help="use TF Serving's REST API (starts fast: no TensorFlow)")
    parser.add_argument("--model-name", default=DEFAULT_MODEL)
    parser.add_argument("--version", type=int, default=None, help="a model version (default: the served one)")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="images per request")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of each call, seconds")
    parser.add_argument("--retries", type=int, default=3, help="retries while the server is unavailable")
    parser.add_argument("--status", action="store_true", help="print the model's version states")
    parser.add_argument("--metadata", action="store_true", help="print the model's signatures")
    args = parser.parse_args(argv)
    if not (args.images or args.status or args.metadata):
        parser.error("give image files, --status or --metadata")
    if args.server and args.server.startswith(("http://", "https://")):
        args.rest = True
    if args.server is None:
        args.server = DEFAULT_REST_SERVER if args.rest else DEFAULT_SERVER
    return args


def make_client(args: argparse.Namespace) -> FilesClient:
    """The client the command line asks for (both take the same arguments and answer the same types)."""
    if args.rest:
        return RestClient(args.server, args.model_name, args.version, args.timeout, args.retries)
    from serving.grpc_client import ServingClient  # TensorFlow: only for the gRPC path

    return ServingClient(args.server, args.model_name, args.version, args.timeout, args.retries)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; 1 when a call or any file failed."""
    args = parse_args(argv)
    failed = False
    try:
        with make_client(args) as client:
            if args.status:
                for version, state in sorted(client.model_status().items()):
                    print(f"{args.model_name} version {version}: {state}")
            if args.metadata:
                for name, signature in sorted(client.model_metadata().items()):
                    if not name.startswith("__"):  # the SavedModel's init op, not a signature to call
                        print(f"{name}: {signature.describe()}")
            if args.images:
                predictions = client.predict_files(args.images, args.top_k, args.batch_size)
                text = format_predictions(predictions)
                if text:
                    print(text)
                for prediction in predictions:
                    if prediction.error is not None:
                        failed = True
                        print(f"error: {prediction.source}: {prediction.error}", file=sys.stderr)
    except ServingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
