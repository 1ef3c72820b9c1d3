import numpy as np
import tensorflow as tf

from components.transform import preprocessing_fn, standardise
from schema import features
from schema.example_data import synthetic


def _raw_batch(n=10):
    rows = list(synthetic.synthetic_examples(n, seed=5))
    return {
        features.IMAGE_KEY: tf.constant([r[0] for r in rows]),
        features.LABEL_KEY: tf.constant([r[1] for r in rows], tf.int64),
        features.CLASS_NAME_KEY: tf.constant([features.class_name(r[1]) for r in rows]),
        features.SOURCE_KEY: tf.constant([r[2] for r in rows]),
    }


def test_preprocessing_fn_outputs_model_ready_tensors():
    raw = _raw_batch()
    out = preprocessing_fn(raw)
    image = out[features.TRANSFORMED_IMAGE_KEY].numpy()
    assert image.shape == (10, 64, 64, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    np.testing.assert_array_equal(out[features.TRANSFORMED_LABEL_KEY].numpy(), np.arange(10))
    np.testing.assert_array_equal(out[features.TRANSFORMED_ONEHOT_KEY].numpy(), np.eye(10, dtype=np.float32))


def test_transform_decode_is_the_shared_decode():
    raw = _raw_batch(3)
    out = preprocessing_fn(raw)[features.TRANSFORMED_IMAGE_KEY]
    direct = features.decode_images(raw[features.IMAGE_KEY])
    np.testing.assert_array_equal(out.numpy(), direct.numpy())


def test_bands_are_standardised_per_band_with_training_statistics(tmp_path):
    """The real TFT analyze + transform (Beam, in memory): each band ends up zero-mean,
    unit-variance over the analysed data, however different the bands' ranges are."""
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    rows = list(synthetic.synthetic_band_examples(20, seed=3))
    raw = [
        {features.BANDS_KEY: b.astype(np.int64), features.LABEL_KEY: label,
         features.CLASS_NAME_KEY: features.class_name(label).encode(), features.SOURCE_KEY: s.encode()}
        for b, label, s in rows
    ]
    spec = features.raw_feature_spec(features.ALL_BANDS)
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    with tft_beam.Context(temp_dir=str(tmp_path), force_tf_compat_v1=False):
        (transformed, _), _ = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing_fn, output_record_batches=False)
    images = np.stack([t[features.TRANSFORMED_IMAGE_KEY] for t in transformed]).reshape(-1, features.NUM_BANDS)
    np.testing.assert_allclose(images.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(images.std(0), 1, atol=1e-3)
    assert [t[features.TRANSFORMED_LABEL_KEY] for t in transformed] == [r[1] for r in rows]


def test_a_constant_band_does_not_divide_by_zero():
    bands = tf.ones([2, 4, 4, 13]) * 7.0
    out = standardise(bands, tf.fill([13], 7.0), tf.zeros([13])).numpy()
    assert np.isfinite(out).all() and (out == 0).all()
