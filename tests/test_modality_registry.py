"""A third modality from the registry alone: RGB + near infrared (B04, B03, B02, B08), four of the
13 bands of EuroSAT's GeoTIFFs.

Only schema.modalities.register and this file know it exists: its schema, parsing spec, examples,
prepared files, Transform, serving signatures and the map's band selection all come from the record.
"""
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from schema import features, modalities, samples

RGBN = modalities.Modality(
    name="rgbn",
    description="4 bands (red, green, blue, near infrared)",
    feature_key="rgbn",
    channels=4,
    feature_shape=(modalities.IMAGE_SIZE, modalities.IMAGE_SIZE, 4),
    feature_dtype="int64",
    schema_file="",
    signature="predict_rgbn",
    signature_input="rgbn",
    input_dtype="uint16",
    file_extensions=modalities.TIFF_EXTENSIONS,
    name_suffix="-rgbn",
    encoded=False,
    pixel_dtype="uint16",
    patch_noun="band values",
    band_names=("B04", "B03", "B02", "B08"),
)
WANTED = [modalities.BAND_NAMES.index(b) for b in RGBN.band_names]  # [3, 2, 1, 7]


@pytest.fixture
def rgbn(monkeypatch):
    """RGBN registered for one test (the registry is restored afterwards)."""
    monkeypatch.setattr(modalities, "REGISTRY", dict(modalities.REGISTRY))
    return modalities.register(RGBN).name


def _thirteen_bands(count=4, seed=3):
    return list(samples.synthetic_band_examples(count, seed=seed))


def test_the_derived_schema_is_the_curated_one_for_the_built_in_modalities():
    """raw_schema derives a modality's schema from its record; for rgb and all it is exactly the
    curated schema/*.pbtxt, so the derivation is the contract a new modality gets. The drift
    comparators are the curated files' own policy on top (thresholds measured on spans, see
    schema/README.md), not part of the record: they are compared apart."""
    import os

    for record in (modalities.RGB, modalities.ALL_BANDS):
        path = os.path.join(os.path.dirname(modalities.__file__), record.schema_file)
        with open(path) as f:
            curated = text_format.Parse(f.read(), schema_pb2.Schema())
        drift = {f.name: f.drift_comparator for f in curated.feature if f.HasField("drift_comparator")}
        assert "label" in drift, record.name  # every curated schema gates the class mix between spans
        skew = {f.name: f.skew_comparator for f in curated.feature if f.HasField("skew_comparator")}
        assert {"label", features.PATCH_MEAN_KEY} <= set(drift) and set(skew) == {features.PATCH_MEAN_KEY}, record.name
        for feature in curated.feature:
            feature.ClearField("drift_comparator")
            feature.ClearField("skew_comparator")
        assert features.raw_schema(record.name, with_patch_mean=True) == curated, record.name


def test_register_refuses_a_clash_or_an_unknown_band(rgbn):
    import dataclasses

    with pytest.raises(ValueError, match="feature_key 'bands' is already modality 'all'"):
        modalities.register(dataclasses.replace(RGBN, name="x", feature_key="bands", signature="s", signature_input="i"))
    with pytest.raises(ValueError, match="B99 are not Sentinel-2 bands"):
        modalities.register(dataclasses.replace(RGBN, name="y", feature_key="y", signature="y", signature_input="y",
                                                band_names=("B04", "B03", "B02", "B99")))
    assert modalities.get("rgbn") is RGBN and RGBN.band_indices == (3, 2, 1, 7)


def test_schema_feature_spec_and_examples_come_from_the_record(rgbn):
    schema = features.raw_schema(rgbn)
    pixels = schema.feature[0]
    assert pixels.name == "rgbn" and pixels.type == schema_pb2.INT
    assert [d.size for d in pixels.shape.dim] == [64, 64, 4] and pixels.int_domain.max == features.BANDS_MAX
    assert [f.name for f in schema.feature[1:]] == [features.LABEL_KEY, features.CLASS_NAME_KEY, features.SOURCE_KEY]

    spec = features.raw_feature_spec(rgbn)
    assert spec["rgbn"] == tf.io.FixedLenFeature([64, 64, 4], tf.int64)
    assert features.serving_feature_spec(rgbn) == {"rgbn": spec["rgbn"]}

    bands, label, source = _thirteen_bands(1)[0]
    example = features.example_of(rgbn, bands, label, source)  # a 13-band patch, cut to the four
    assert features.modality_of(example) == rgbn
    parsed = tf.io.parse_single_example(example.SerializeToString(), spec)
    np.testing.assert_array_equal(parsed["rgbn"].numpy(), bands[..., WANTED])
    with pytest.raises(ValueError, match=r"expected 4 Sentinel-2 bands \(B04, B03, B02, B08\)"):
        features.check_bands(bands[..., :5], rgbn)

    patch = samples.synthetic_patch(rgbn, 2, np.random.default_rng(0))
    assert patch.shape == (64, 64, 4) and patch.dtype == np.uint16


def test_a_13_band_geotiff_is_prepared_as_the_modalitys_bands(rgbn):
    from components import prepare

    bands = _thirteen_bands(1)[0][0]
    prepared = prepare.prepare(features.encode_bands_tiff(bands), rgbn)
    stored = np.frombuffer(prepared.image, np.uint16).reshape(64, 64, 4)
    np.testing.assert_array_equal(stored, bands[..., WANTED])
    example = prepare.to_example(prepared.image, 1, "Forest/Forest_1.tif", rgbn)
    assert list(example.features.feature["rgbn"].int64_list.value[:4]) == list(bands[0, 0, WANTED])


def test_transform_and_signatures_take_the_fourth_band(rgbn, tmp_path):
    """The real Transform analysis standardises 4 bands; the export has a predict_rgbn signature
    taking uint16 [N, 64, 64, 4], whose answer is the tf.Example signature's."""
    from tests import serving_fixtures

    exported = serving_fixtures.export_model(str(tmp_path), modality=rgbn)
    assert exported.tft_output.transformed_feature_spec()[features.TRANSFORMED_IMAGE_KEY].shape == [64, 64, 4]
    loaded = tf.saved_model.load(exported.export_dir)
    assert "predict_rgbn" in loaded.signatures and "predict_bands" not in loaded.signatures
    rows = _thirteen_bands(3, seed=7)
    pixels = np.stack([b[..., WANTED] for b, _, _ in rows])
    out = loaded.signatures["predict_rgbn"](rgbn=tf.constant(pixels, tf.uint16))
    assert out["probabilities"].shape == (3, features.NUM_CLASSES)
    examples = [features.example_of(rgbn, b, label, s).SerializeToString() for b, label, s in rows]
    by_example = loaded.signatures["serving_default"](examples=tf.constant(examples))["probabilities"]
    np.testing.assert_allclose(out["probabilities"].numpy(), by_example.numpy(), atol=1e-5)

    from pipeline.mapping import predictors

    assert predictors.export_modality(exported.export_dir) == rgbn
    predictor = predictors.SavedModelPredictor(exported.export_dir)
    np.testing.assert_allclose(predictor.predict(pixels), out["probabilities"].numpy(), atol=1e-5)


def test_the_map_takes_the_modalitys_bands_from_a_product(rgbn):
    from pipeline.mapping.errors import MapError
    from pipeline.mapping.product import Product, bands_for_model

    files = {b: f"/scene/T31_{b}.jp2" for b in modalities.BAND_NAMES}
    product = Product("/scene", "L1C", "05.09", files, {}, 10000.0, "MTD_MSIL1C.xml", None, None)
    assert bands_for_model(product, rgbn) == (("B04", "B03", "B02", "B08"), [])
    without_nir = Product("/scene", "L1C", "05.09", {b: f for b, f in files.items() if b != "B08"}, {}, 10000.0,
                          "MTD_MSIL1C.xml", None, None)
    with pytest.raises(MapError, match="lacks band B08"):
        bands_for_model(without_nir, rgbn)
