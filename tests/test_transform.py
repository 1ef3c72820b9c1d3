import numpy as np
import tensorflow as tf

from components import features, synthetic
from components.transform import preprocessing_fn


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
