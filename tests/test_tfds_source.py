"""tfds:eurosat/rgb: offline it fails at once and says what to do instead; names map to the contract."""
import socket
import time

import pytest

from components import convert, tfds_source
from components.tfds_source import TfdsUnavailableError, parse_tfds


def test_parse_tfds_specs():
    assert parse_tfds("tfds:eurosat/rgb") == "eurosat/rgb"
    assert parse_tfds("synthetic:10") is None and parse_tfds("/data/EuroSAT") is None
    with pytest.raises(TfdsUnavailableError, match="13-band"):
        parse_tfds("tfds:eurosat/all")
    with pytest.raises(TfdsUnavailableError, match="supported TFDS datasets are tfds:eurosat/rgb"):
        parse_tfds("tfds:mnist")


def test_offline_without_prepared_data_fails_fast_naming_the_alternatives(tmp_path):
    start = time.time()
    with pytest.raises(TfdsUnavailableError) as err:
        tfds_source.write_tfds_tfrecords("eurosat/rgb", str(tmp_path / "cache"), str(tmp_path / "tfds"),
                                         is_reachable=lambda url: False)
    assert time.time() - start < 30
    msg = str(err.value)
    assert "cannot be reached" in msg and "--tfds-data-dir" in msg and "--data" in msg and "synthetic" in msg
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*tfrecord*"))


def test_reachable_is_a_bounded_probe():
    with socket.socket() as s:  # a port nobody listens on: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.time()
    assert not tfds_source.reachable(f"http://127.0.0.1:{port}/EuroSAT.zip", timeout_s=1.0)
    assert time.time() - start < 5


def test_tfds_examples_follow_the_contract_and_archive_source_names(tmp_path):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from components import features

    assert tfds_source._source_name("Forest_12.jpg", 1) == "Forest/Forest_12.jpg"
    with tfds.testing.mock_data(num_examples=12):
        # mock_data replaces download_and_prepare and the records (no network, random images)
        out = tfds_source.write_tfds_tfrecords("eurosat/rgb", str(tmp_path), is_reachable=lambda url: True)
    examples = list(convert.iter_examples(out))
    assert len(examples) > 0
    for e in examples:
        f = e.features.feature
        label = f["label"].int64_list.value[0]
        assert f["class_name"].bytes_list.value[0].decode() == features.class_name(label)
        assert f["source"].bytes_list.value[0].decode().startswith(features.class_name(label) + "/")
        image = features.decode_image(tf.constant(f["image"].bytes_list.value[0]))  # encoded, as stored
        assert image.shape == (64, 64, 3)
