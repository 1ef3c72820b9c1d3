import os

import numpy as np
import pytest
import tensorflow as tf

from schema import features
from schema.example_data import synthetic


def test_images_are_reproducible_and_balanced():
    a = list(synthetic.synthetic_examples(30, seed=7))
    b = list(synthetic.synthetic_examples(30, seed=7))
    assert [x[0] for x in a] == [x[0] for x in b]
    labels = [label for _, label, _ in a]
    assert sorted(set(labels)) == list(range(10)) and all(labels.count(i) == 3 for i in range(10))
    assert a[0][2] == "AnnualCrop/AnnualCrop_1.jpg"


def test_images_have_eurosat_shape():
    image = synthetic.synthetic_image(3, np.random.default_rng(0))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8


def test_classes_are_learnable_but_not_trivial():
    """Nearest class-centroid on colour alone is far from perfect; textures carry the rest."""
    rng = np.random.default_rng(1)

    def feats(n):
        xs, ys = [], []
        for i in range(n):
            img = synthetic.synthetic_image(i % 10, rng).astype(np.float32)
            small = img.reshape(8, 8, 8, 8, 3).mean(axis=(1, 3)).ravel()
            xs.append(np.concatenate([small, [img.std()]]))
            ys.append(i % 10)
        return np.array(xs), np.array(ys)

    x_train, y_train = feats(400)
    x_test, y_test = feats(200)
    centroids = np.stack([x_train[y_train == c].mean(0) for c in range(10)])
    pred = np.argmin(((x_test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    accuracy = (pred == y_test).mean()
    assert 0.3 < accuracy < 0.98, accuracy


def test_tfrecords_follow_the_contract_and_are_idempotent(tmp_path):
    paths = synthetic.write_synthetic_tfrecords(str(tmp_path), 20, seed=1, num_shards=2)
    assert len(paths) == 2
    mtimes = [os.path.getmtime(p) for p in paths]
    records = [r.numpy() for r in tf.data.TFRecordDataset(paths)]
    assert len(records) == 20
    parsed = tf.io.parse_example(records, features.raw_feature_spec())
    for label, name in zip(parsed["label"].numpy(), parsed["class_name"].numpy()):
        assert features.CLASS_NAMES[label] == name.decode()
    assert all(s.startswith(b"synthetic/") for s in parsed["source"].numpy())
    assert synthetic.write_synthetic_tfrecords(str(tmp_path), 20, seed=1, num_shards=2) == paths
    assert [os.path.getmtime(p) for p in paths] == mtimes  # reused, not rewritten


def test_too_small_a_set_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 10"):
        synthetic.write_synthetic_tfrecords(str(tmp_path), 5)


def test_band_patches_carry_class_spectra_and_the_rgb_texture():
    rng = np.random.default_rng(2)
    forest = synthetic.synthetic_bands(features.class_id("Forest"), rng)
    sea = synthetic.synthetic_bands(features.class_id("SeaLake"), rng)
    assert forest.shape == features.BANDS_SHAPE and forest.dtype == np.uint16
    nir = features.BAND_NAMES.index("B08")
    # Vegetation is bright in the near infrared, water dark: the spectral cue of the real data.
    assert forest[..., nir].mean() > 4 * sea[..., nir].mean()
    # The visible bands are the RGB picture, so its textures are there too (not flat spectra).
    assert forest[..., features.TRUE_COLOUR_BANDS[0]].std() > 10


def test_band_tfrecords_follow_the_13_band_contract(tmp_path):
    paths = synthetic.write_synthetic_tfrecords(str(tmp_path), 20, seed=1, modality=features.ALL_BANDS)
    records = [r.numpy() for r in tf.data.TFRecordDataset(paths)]
    parsed = tf.io.parse_example(records, features.raw_feature_spec(features.ALL_BANDS))
    assert parsed[features.BANDS_KEY].shape == (20, *features.BANDS_SHAPE)
    assert parsed["source"].numpy()[0] == b"synthetic/AnnualCrop/AnnualCrop_1.tif"
    assert features.detect_modality(str(tmp_path)) == features.ALL_BANDS
    # The same folder asked for in RGB is regenerated, not mistaken for the 13-band set.
    synthetic.write_synthetic_tfrecords(str(tmp_path), 20, seed=1)
    assert features.detect_modality(str(tmp_path)) == features.RGB
