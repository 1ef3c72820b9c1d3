#!/usr/bin/env python
"""What the model's training statistics cost (serving/training_statistics.py), on a pipeline's own
Transform output: the Trainer's one read of the train split (components.dataset.input_fn: counts the
examples, gathers the patch moments, fills the input cache) against the same read of a schema without
the patch moments (a Transform graph built before them), and the Transform graph's patch moments
against the decode/standardise alone.

    python benchmarks/training_statistics.py --transform-dir OUT/Transform/transform_graph/N \
        --train-files 'OUT/Transform/transformed_examples/N/Split-train/*' [--repeats 3]

Prints one JSON object (seconds are the best of --repeats).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transform-dir", required=True)
    p.add_argument("--train-files", required=True)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    import types

    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import dataset_metadata

    from components import transform
    from components.dataset import input_fn, local_data_accessor
    from components.hparams import HParams
    from schema import features
    from serving import signatures, training_statistics

    tft_output = tft.TFTransformOutput(args.transform_dir)
    accessor = local_data_accessor()

    def read(output):
        return input_fn([args.train_files], accessor, output, HParams().batch_size, training=True)

    # The same output as a Transform graph built before the patch moments gives it (input_fn reads its schema).
    schema = schema_pb2.Schema()
    schema.feature.extend(f for f in tft_output.transformed_metadata.schema.feature
                          if f.name not in (features.PATCH_MEAN_KEY, features.PATCH_MEAN_SQ_KEY))
    without_moments = types.SimpleNamespace(transformed_metadata=dataset_metadata.DatasetMetadata(schema))

    trainer_input = read(tft_output)
    n, moments = trainer_input.examples, trainer_input.moments
    if moments is None:
        raise SystemExit(f"--transform-dir {args.transform_dir}: this Transform graph gives no patch moments "
                         "(built before them); pass one built by the current components/transform.py")
    count_s = best_of(args.repeats, lambda: read(without_moments))
    moments_s = best_of(args.repeats, lambda: read(tft_output))
    summarise_s = best_of(args.repeats, lambda: training_statistics.of_modality(
        *moments, signatures.modality_of(tft_output)))

    # The Transform graph's part: the patch moments on top of the pixels' decode/standardise.
    modality = signatures.modality_of(tft_output)
    from schema.example_data import synthetic

    rng = np.random.default_rng(0)
    if modality == features.RGB:
        raw = tf.constant([synthetic.encode_jpeg(synthetic.synthetic_image(i % 10, rng)) for i in range(n)])
        pixels_of = tf.function(lambda x: features.decode_images(x) * 255.0)
    else:
        raw = tf.constant(np.stack([synthetic.synthetic_bands(i % 10, rng) for i in range(n)]).astype(np.int64))
        pixels_of = tf.function(lambda x: tf.cast(x, tf.float32))
    with_moments = tf.function(lambda x: transform.patch_moments(pixels_of(x)))
    pixels_of(raw), with_moments(raw)  # traced
    decode_s = best_of(args.repeats, lambda: pixels_of(raw).numpy())
    moments_graph_s = best_of(args.repeats, lambda: {k: v.numpy() for k, v in with_moments(raw).items()})
    print(json.dumps({
        "modality": modality, "train_examples": n,
        "trainer_read_without_moments_s": round(count_s, 3), "trainer_read_with_moments_s": round(moments_s, 3),
        "trainer_added_s": round(moments_s - count_s, 3), "summarise_s": round(summarise_s, 4),
        "transform_pixels_s": round(decode_s, 3), "transform_pixels_and_moments_s": round(moments_graph_s, 3),
        "transform_added_s": round(moments_graph_s - decode_s, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
