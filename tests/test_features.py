import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components import features


def _encode(array: np.ndarray, fmt: str = "JPEG", mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format=fmt)
    return buf.getvalue()


def test_class_names_are_eurosat_in_order():
    assert features.NUM_CLASSES == 10
    assert features.CLASS_NAMES[0] == "AnnualCrop" and features.CLASS_NAMES[-1] == "SeaLake"
    assert len(set(features.CLASS_NAMES)) == 10
    for i, name in enumerate(features.CLASS_NAMES):
        assert features.class_id(name) == i and features.class_name(i) == name


@pytest.mark.parametrize("bad", [-1, 10, 99])
def test_unknown_label_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="not a EuroSAT class id"):
        features.class_name(bad)


def test_unknown_class_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="AnnualCrop, Forest"):
        features.class_id("Desert")


def test_example_round_trip_through_the_raw_spec():
    jpeg = _encode(np.zeros((64, 64, 3), np.uint8))
    ex = features.make_example(jpeg, 8, "River/River_1.jpg")
    parsed = tf.io.parse_single_example(ex.SerializeToString(), features.raw_feature_spec())
    assert parsed[features.IMAGE_KEY].numpy() == jpeg
    assert parsed[features.LABEL_KEY].numpy() == 8
    assert parsed[features.CLASS_NAME_KEY].numpy() == b"River"
    assert parsed[features.SOURCE_KEY].numpy() == b"River/River_1.jpg"


def test_schema_file_agrees_with_the_contract():
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import schema_utils
    from tfx.utils import io_utils

    from pipeline.config import DEFAULT_SCHEMA

    schema = io_utils.parse_pbtxt_file(DEFAULT_SCHEMA, schema_pb2.Schema())
    assert schema_utils.schema_as_feature_spec(schema).feature_spec == features.raw_feature_spec()
    domain = {d.name: list(d.value) for d in schema.string_domain}["class_name"]
    assert tuple(domain) == features.CLASS_NAMES
    label = next(f for f in schema.feature if f.name == "label")
    assert (label.int_domain.min, label.int_domain.max) == (0, features.NUM_CLASSES - 1)


def test_decode_scales_jpeg_to_unit_range():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    image = features.decode_image(tf.constant(_encode(pixels, "PNG"))).numpy()
    assert image.shape == (64, 64, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image, pixels / 255.0, atol=1e-6)  # PNG is lossless


def test_decode_handles_grayscale_rgba_and_other_sizes():
    gray = features.decode_image(tf.constant(_encode(np.full((64, 64), 128, np.uint8), "PNG")))
    assert gray.shape == (64, 64, 3)
    np.testing.assert_allclose(gray.numpy(), 128 / 255.0, atol=1e-6)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 10
    decoded = features.decode_image(tf.constant(_encode(rgba, "PNG", mode="RGBA"))).numpy()
    assert decoded.shape == (64, 64, 3) and np.allclose(decoded[..., 0], 1.0)
    big = features.decode_image(tf.constant(_encode(np.full((100, 80, 3), 200, np.uint8))))
    assert big.shape == (64, 64, 3)


def test_corrupt_bytes_fail_loudly():
    with pytest.raises(tf.errors.InvalidArgumentError):
        features.decode_image(tf.constant(b"this is not an image"))
    truncated = _encode(np.zeros((64, 64, 3), np.uint8))[:50]
    with pytest.raises(tf.errors.InvalidArgumentError):
        features.decode_image(tf.constant(truncated))


def test_batch_decode_accepts_rank_one_and_two():
    jpeg = _encode(np.zeros((64, 64, 3), np.uint8))
    assert features.decode_images(tf.constant([jpeg, jpeg])).shape == (2, 64, 64, 3)
    assert features.decode_images(tf.constant([[jpeg], [jpeg], [jpeg]])).shape == (3, 64, 64, 3)
