"""The export contract: which signatures a pushed model has, and what goes in and out.

- ``serving_default``: serialized tf.Example (``examples``) -> ``probabilities`` [N, 10].
  What the Evaluator and TF Serving's Predict use.
- ``predict_images`` (RGB models): encoded image bytes (``images``, JPEG/PNG) -> ``probabilities``,
  ``class_id`` and ``class_name``. For clients that have files, not tf.Examples.
- ``predict_bands`` (13-band models): ``bands`` uint16 [N, 64, 64, 13], the GeoTIFF's digital
  numbers as they are (2 bytes a value on the wire, no tf.Example around them) -> the same outputs.
- ``classify``: serialized tf.Example (``inputs``) -> ``classes`` (class names) and ``scores``,
  method name ``tensorflow/serving/classify``: TF Serving's Classify API.
- ``transform_features``: serialized tf.Example -> the Transform's outputs (debugging, TFMA).

All prediction signatures run the Transform graph (TFT layer), so the decode and scaling are
the very ops used to make the training data.

Every signature refuses, with INVALID_ARGUMENT, a request with no rows, and every signature that
decodes images first reads each image's size from its header (JPEG: ``extract_jpeg_shape``;
PNG, GIF, BMP: the header fields) and refuses images over ``max_image_pixels`` before anything is
decoded: a 300 KB PNG can hold 10000x10000 pixels (1.5 GB decoded), in TF Serving as here.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Dict, Sequence, TypeVar

import tensorflow as tf

from schema import features, modalities
from serving.contract import (
    BANDS_INPUT,
    CLASS_ID,
    CLASS_NAME,
    CLASSIFY,
    CLASSIFY_CLASSES,
    CLASSIFY_INPUTS,
    CLASSIFY_METHOD_NAME,
    CLASSIFY_SCORES,
    EXAMPLES_INPUT,
    IMAGES_INPUT,
    PREDICT_BANDS,
    PREDICT_IMAGES,
    PROBABILITIES,
    SAVED_MODEL_FILE,
    SERVING_DEFAULT,
    TRANSFORM_FEATURES,
    pixel_signature,
)

__all__ = [
    "BANDS_INPUT",
    "CLASSIFY",
    "CLASSIFY_CLASSES",
    "CLASSIFY_INPUTS",
    "CLASSIFY_METHOD_NAME",
    "CLASSIFY_SCORES",
    "CLASS_ID",
    "CLASS_NAME",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "EXAMPLES_INPUT",
    "IMAGES_INPUT",
    "PREDICT_BANDS",
    "PREDICT_IMAGES",
    "PROBABILITIES",
    "SAVED_MODEL_FILE",
    "SERVING_DEFAULT",
    "TRANSFORM_FEATURES",
    "checked_images",
    "checked_rows",
    "header_sizes",
    "make_serving_signatures",
    "modality_of",
    "pixel_signature",
    "set_classify_method_name",
]

if TYPE_CHECKING:  # the server needs no tensorflow_transform (hundreds of MB); the export has it
    import tensorflow_transform as tft

# Largest image (width x height) a signature decodes; EuroSAT patches are 64x64. 1024x1024 keeps
# one decoded float32 image at 12 MB. Set at export (export_serving_model(max_image_pixels=...)).
DEFAULT_MAX_IMAGE_PIXELS = 1024 * 1024
_HEADER_BYTES = 32  # enough for the size fields of PNG (IHDR), GIF and BMP headers


def _uint(head: tf.Tensor, offsets: Sequence[int], big_endian: bool) -> tf.Tensor:
    """Unsigned integer of the header bytes at `offsets` (most significant byte first if big_endian)."""
    order = offsets if not big_endian else offsets[::-1]
    return tf.add_n([tf.cast(head[:, o], tf.int64) * (256 ** i) for i, o in enumerate(order)])


def header_sizes(images: tf.Tensor) -> tf.Tensor:
    """int64 [N, 2] (height, width) of encoded images read from their headers, nothing decoded.

    JPEG via tf.image.extract_jpeg_shape, PNG/GIF/BMP from their fixed header fields; bytes in
    no format of these get (-1, -1). (TensorFlow's decoder also reads WebP and JPEG XL, whose size
    is not read here, so they are refused rather than decoded blind.)
    """
    first = tf.strings.substr(images, 0, _HEADER_BYTES)
    padded = tf.strings.substr(tf.strings.join([first, "\0" * _HEADER_BYTES]), 0, _HEADER_BYTES)
    head = tf.reshape(tf.io.decode_raw(padded, tf.uint8), [-1, _HEADER_BYTES])

    def starts(magic: bytes) -> tf.Tensor:
        return tf.reduce_all(tf.equal(head[:, : len(magic)], tf.constant(list(magic), tf.uint8)), axis=1)

    png = tf.stack([_uint(head, [20, 21, 22, 23], True), _uint(head, [16, 17, 18, 19], True)], axis=1)
    gif = tf.stack([_uint(head, [8, 9], False), _uint(head, [6, 7], False)], axis=1)
    bmp_height = _uint(head, [22, 23, 24, 25], False)  # int32; negative means top-down rows
    bmp_height = tf.where(bmp_height >= 2**31, 2**32 - bmp_height, bmp_height)
    bmp = tf.stack([bmp_height, _uint(head, [18, 19, 20, 21], False)], axis=1)
    is_jpeg = starts(b"\xff\xd8")
    jpeg = tf.map_fn(
        lambda x: tf.cond(
            x[1],
            lambda: tf.cast(tf.image.extract_jpeg_shape(x[0])[:2], tf.int64),
            lambda: tf.zeros([2], tf.int64),
        ),
        (images, is_jpeg),
        fn_output_signature=tf.TensorSpec([2], tf.int64),
    )
    sizes = -tf.ones_like(png)
    for is_format, format_sizes in (
        (starts(b"\x89PNG"), png), (starts(b"GIF8"), gif), (starts(b"BM"), bmp), (is_jpeg, jpeg),
    ):
        sizes = tf.where(is_format[:, tf.newaxis], format_sizes, sizes)
    return sizes


def checked_rows(tensor: tf.Tensor, input_name: str) -> tf.Tensor:
    """`tensor`, once it is known to hold at least one row.

    An empty batch would fail in the model with a message about filter depths.
    """
    check = tf.debugging.Assert(
        tf.shape(tensor)[0] > 0,
        [f"the request holds no {input_name}: send at least one (a batch of 0 rows cannot be predicted)"],
    )
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


def checked_images(images: tf.Tensor, max_pixels: int, input_name: str = IMAGES_INPUT) -> tf.Tensor:
    """`images` (encoded, [N]), once no image is empty of rows and none is over `max_pixels`."""
    images = checked_rows(tf.reshape(images, [-1]), input_name)
    sizes = header_sizes(images)
    unknown = tf.argmin(sizes[:, 0], output_type=tf.int32)
    known = tf.debugging.Assert(
        sizes[unknown, 0] >= 0,
        [tf.strings.format(
            "image {} of the request is in no image file format this model reads (JPEG, PNG, GIF, BMP)",
            (unknown,))],
    )
    pixels = sizes[:, 0] * sizes[:, 1]
    worst = tf.argmax(pixels, output_type=tf.int32)
    check = tf.debugging.Assert(
        pixels[worst] <= max_pixels,
        [tf.strings.format(
            "image {} of the request is {}x{} pixels; this model decodes at most {} pixels per image "
            "(max_image_pixels at export): send it resized (EuroSAT patches are 64x64)",
            (worst, sizes[worst, 1], sizes[worst, 0], max_pixels),
        )],
    )
    with tf.control_dependencies([known, check]):  # decode only after the checks
        return tf.identity(images)


F = TypeVar("F", bound=Callable[..., Any])


def _graph(fn: F) -> F:
    """tf.function traced once per input shape (no fixed signature), typed for mypy."""
    decorator: Callable[[F], F] = tf.function
    return decorator(fn)


def _traced(*specs: tf.TensorSpec) -> Callable[[F], F]:
    """tf.function over one fixed input signature, typed for mypy (TensorFlow ships no stubs)."""
    decorator: Callable[[F], F] = tf.function(input_signature=list(specs))
    return decorator


def modality_of(tft_output: tft.TFTransformOutput) -> str:
    """The modality a Transform graph was built for (its raw features say it)."""
    return modalities.of_feature_keys(tft_output.raw_feature_spec()).name


def make_serving_signatures(
    model: tf.keras.Model, tft_output: tft.TFTransformOutput, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> Dict[str, Any]:
    """The signatures to export with `model`; attaches the Transform layer to it."""
    model.tft_layer = tft_output.transform_features_layer()
    class_names = tf.constant(features.CLASS_NAMES)
    modality = modality_of(tft_output)
    record = modalities.get(modality)
    request_spec = features.serving_feature_spec(modality)

    def guarded(raw_features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """The raw features, once their images passed the size check (every path that decodes)."""
        if not record.encoded or record.feature_key not in raw_features:
            return raw_features
        key = record.feature_key
        return {**raw_features, key: checked_images(raw_features[key], max_image_pixels, record.signature_input)}

    # One traced function for the model itself, called by every signature: the SavedModel holds one graph of
    # the network instead of one per signature, and the export traces it once.
    @_graph
    def classify_images(images: tf.Tensor) -> tf.Tensor:
        return model(images, training=False)

    def predict(raw_features: Dict[str, tf.Tensor]) -> tf.Tensor:
        transformed = model.tft_layer(guarded(raw_features))
        return classify_images(transformed[features.TRANSFORMED_IMAGE_KEY])

    def with_classes(probabilities: tf.Tensor) -> Dict[str, tf.Tensor]:
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {
            PROBABILITIES: probabilities,
            CLASS_ID: class_id,
            CLASS_NAME: tf.gather(class_names, class_id),
        }

    @_traced(tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT))
    def serve_examples(examples: tf.Tensor) -> Dict[str, tf.Tensor]:
        raw = tf.io.parse_example(checked_rows(examples, EXAMPLES_INPUT), request_spec)
        return {PROBABILITIES: predict(raw)}

    # The pixel signature (predict_images, predict_bands, ...): the modality's raw pixels, no tf.Example.
    pixel_shape = [None] if record.encoded else [None, *record.feature_shape]

    @_traced(tf.TensorSpec(pixel_shape, record.input_dtype, name=record.signature_input))
    def serve_pixels(pixels: tf.Tensor) -> Dict[str, tf.Tensor]:
        if not record.encoded:  # encoded images are checked (rows included) by `guarded`
            pixels = tf.cast(checked_rows(pixels, record.signature_input), record.feature_dtype)
        return with_classes(predict({record.feature_key: pixels}))

    @_traced(tf.TensorSpec([None], tf.string, name=CLASSIFY_INPUTS))
    def classify(inputs: tf.Tensor) -> Dict[str, tf.Tensor]:
        raw = tf.io.parse_example(checked_rows(inputs, CLASSIFY_INPUTS), request_spec)
        scores = predict(raw)
        classes = tf.tile(class_names[tf.newaxis, :], [tf.shape(scores)[0], 1])
        return {CLASSIFY_CLASSES: classes, CLASSIFY_SCORES: scores}

    # The raw spec less what only the ingestion writes (patch_mean, for statistics): a request need not carry it.
    raw_spec = {k: v for k, v in tft_output.raw_feature_spec().items() if k not in features.INGESTION_ONLY_KEYS}

    @_traced(tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT))
    def transform_features(examples: tf.Tensor) -> Dict[str, tf.Tensor]:
        raw = tf.io.parse_example(examples, raw_spec)
        transformed: Dict[str, tf.Tensor] = model.tft_layer(guarded(raw))
        return transformed

    return {
        SERVING_DEFAULT: serve_examples,
        record.signature: serve_pixels,
        CLASSIFY: classify,
        TRANSFORM_FEATURES: transform_features,
    }


def set_classify_method_name(export_dir: str, signature_name: str = CLASSIFY) -> None:
    """Mark `signature_name` as a classification signature in the SavedModel on disk.

    TF2's saver gives every signature the Predict method name, but TF Serving's Classify API
    only accepts signatures whose method_name is tensorflow/serving/classify. The SignatureDef
    is plain metadata (the loader ignores method_name), so it is set in saved_model.pb itself.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(export_dir, SAVED_MODEL_FILE)
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if signature_name not in meta_graph.signature_def:
            raise ValueError(f"{path} has no {signature_name!r} signature to mark as classify.")
        meta_graph.signature_def[signature_name].method_name = CLASSIFY_METHOD_NAME
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved_model.SerializeToString())
