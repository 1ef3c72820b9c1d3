import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from schema import features


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


@pytest.mark.parametrize("modality", features.MODALITIES)
def test_schema_files_agree_with_the_contract(modality):
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import schema_utils
    from tfx.utils import io_utils

    from pipeline.config import PipelineConfig

    schema = io_utils.parse_pbtxt_file(PipelineConfig(modality=modality).schema_file(), schema_pb2.Schema())
    assert schema_utils.schema_as_feature_spec(schema).feature_spec == features.raw_feature_spec(modality, True)
    domain = {d.name: list(d.value) for d in schema.string_domain}["class_name"]
    assert tuple(domain) == features.CLASS_NAMES
    label = next(f for f in schema.feature if f.name == "label")
    assert (label.int_domain.min, label.int_domain.max) == (0, features.NUM_CLASSES - 1)
    if modality == features.ALL_BANDS:
        bands = next(f for f in schema.feature if f.name == features.BANDS_KEY)
        assert (bands.int_domain.min, bands.int_domain.max) == (0, features.BANDS_MAX)


def _bands(seed=0):
    return np.random.default_rng(seed).integers(0, 5000, features.BANDS_SHAPE).astype(np.uint16)


def test_bands_example_round_trips_and_says_its_modality():
    bands = _bands()
    ex = features.make_bands_example(bands, 3, "Highway/Highway_1.tif")
    assert features.modality_of(ex) == features.ALL_BANDS
    assert features.modality_of(features.make_example(b"jpeg", 3, "x.jpg")) == features.RGB
    parsed = tf.io.parse_single_example(ex.SerializeToString(), features.raw_feature_spec(features.ALL_BANDS))
    np.testing.assert_array_equal(parsed[features.BANDS_KEY].numpy(), bands)
    assert parsed[features.CLASS_NAME_KEY].numpy() == b"Highway"
    with pytest.raises(ValueError, match="neither 'image'.*nor 'bands'"):
        features.modality_of(tf.train.Example())


def test_geotiff_reader_accepts_eurosat_layouts_and_rejects_the_rest():
    bands = _bands()
    np.testing.assert_array_equal(features.read_bands(features.encode_bands_tiff(bands)), bands)
    band_first = features.encode_bands_tiff(np.transpose(bands, (2, 0, 1)))
    np.testing.assert_array_equal(features.read_bands(band_first), bands)
    # TFDS's eurosat/all gives the digital numbers as float32: whole numbers are fine.
    np.testing.assert_array_equal(features.check_bands(bands.astype(np.float32)), bands)
    tiff = features.encode_bands_tiff(bands)
    for data, reason in (
        (tiff[: len(tiff) // 2], "cannot decode GeoTIFF"),
        (b"not a tiff at all", "cannot decode GeoTIFF"),
        (b"II*\x00 garbage after a TIFF header", "cannot decode GeoTIFF: no image data"),
        (features.encode_bands_tiff(bands[..., :4]), "expected 13 Sentinel-2 bands"),
        (features.encode_bands_tiff(bands[:32, :48]), "size 48x32: 13-band patches must be 64x64"),
        (features.encode_bands_tiff(bands.astype(np.float32) / 10000), "not scaled reflectances"),
        (features.encode_bands_tiff(bands.astype(np.int32) - 1), "outside 0..65535"),
    ):
        with pytest.raises(ValueError, match=reason):
            features.read_bands(data)


def test_true_colour_picture_of_bands_is_displayable():
    bands = np.zeros(features.BANDS_SHAPE, np.uint16)
    bands[..., 3] = 3000  # B04 (red) at the stretch's white point
    bands[..., 1] = 60000  # B02 (blue) saturates
    rgb = features.true_colour(bands)
    assert rgb.shape == (64, 64, 3) and rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_allclose(rgb[0, 0], [1.0, 0.0, 1.0])


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


def test_patch_mean_is_the_per_band_mean_in_the_units_transform_uses():
    """RGB: the decoded uint8 values' mean per channel (a PNG: lossless, so exact); bands: the digital numbers'."""
    from components.transform import patch_moments

    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0], rgb[:32, :, 1], rgb[..., 2] = 200, 100, 7
    np.testing.assert_allclose(features.patch_mean(features.RGB, _encode(rgb, "PNG")), [200.0, 50.0, 7.0], atol=1e-4)
    bands = _bands(4)
    means = features.patch_mean(features.ALL_BANDS, bands)
    assert means.shape == (features.NUM_BANDS,) and means.dtype == np.float32
    np.testing.assert_allclose(means, bands.reshape(-1, features.NUM_BANDS).mean(0), rtol=1e-6)
    # the same values Transform's patch_moments gives the Trainer's training statistics
    transformed = patch_moments(tf.constant(bands[np.newaxis], tf.float32))[features.PATCH_MEAN_KEY].numpy()[0]
    np.testing.assert_allclose(means, transformed, rtol=1e-5)


@pytest.mark.parametrize("modality", features.MODALITIES)
def test_with_patch_mean_adds_the_feature_the_curated_schemas_declare(modality):
    pixels = _encode(np.full((64, 64, 3), 90, np.uint8), "PNG") if modality == features.RGB else _bands(5)
    example = features.example_of(modality, pixels, 2, "HerbaceousVegetation/x")
    spec = features.raw_feature_spec(modality, with_patch_mean=True)
    with pytest.raises(tf.errors.InvalidArgumentError):  # what the ExampleGen writes carries it; a bare example not
        tf.io.parse_single_example(example.SerializeToString(), spec)
    added = features.with_patch_mean(example)
    assert features.PATCH_MEAN_KEY not in example.features.feature  # a copy: the input is left as it was
    parsed = tf.io.parse_single_example(added.SerializeToString(), spec)
    np.testing.assert_allclose(parsed[features.PATCH_MEAN_KEY].numpy(), features.patch_mean(modality, pixels))
    assert features.with_patch_mean(added, modality) == added  # replaced, not appended: idempotent
    # the model's request never carries it: only a raw feature of the training environment
    schema = features.raw_schema(modality, with_patch_mean=True)
    (declared,) = [f for f in schema.feature if f.name == features.PATCH_MEAN_KEY]
    assert list(declared.not_in_environment) == [features.SERVING_ENVIRONMENT]
    assert features.PATCH_MEAN_KEY not in features.serving_feature_spec(modality)
