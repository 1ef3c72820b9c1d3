"""tfds:eurosat/rgb and eurosat/all: offline it fails at once and says what to do instead; names map to the contract."""
import socket
import time

import numpy as np
import pytest

from components import tfds_source
from components.tfds_source import TfdsUnavailableError, parse_tfds
from tests.ingest import run_example_gen, split_examples


def test_parse_tfds_specs():
    assert parse_tfds("tfds:eurosat/rgb") == "eurosat/rgb"
    assert parse_tfds("tfds:eurosat/all") == "eurosat/all"
    assert parse_tfds("synthetic:10") is None and parse_tfds("/data/EuroSAT") is None
    with pytest.raises(TfdsUnavailableError, match="supported TFDS datasets are tfds:eurosat/rgb, tfds:eurosat/all"):
        parse_tfds("tfds:mnist")


@pytest.mark.parametrize("name, archive", [("eurosat/rgb", "EuroSAT.zip"), ("eurosat/all", "EuroSATallBands.zip")])
def test_offline_without_prepared_data_fails_fast_naming_the_alternatives(tmp_path, name, archive):
    start = time.time()
    with pytest.raises(TfdsUnavailableError) as err:
        tfds_source.prepare_builder(name, str(tmp_path / "tfds"), is_reachable=lambda url: False)
    assert time.time() - start < 30
    msg = str(err.value)
    assert f"tfds:{name} is not prepared" in msg and archive in msg
    assert "cannot be reached" in msg and "--tfds-data-dir" in msg and "--data" in msg and "synthetic" in msg
    assert not list(tmp_path.rglob("*tfrecord*"))


def test_reachable_is_a_bounded_probe():
    with socket.socket() as s:  # a port nobody listens on: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.time()
    assert not tfds_source.reachable(f"http://127.0.0.1:{port}/EuroSAT.zip", timeout_s=1.0)
    assert time.time() - start < 5


def test_tfds_examples_follow_the_contract_and_archive_source_names(tmp_path, monkeypatch):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from schema import features

    assert tfds_source._source_name("Forest_12.jpg", 1) == "Forest/Forest_12.jpg"
    monkeypatch.setattr(tfds_source, "reachable", lambda url: True)  # mock_data "downloads"
    out = str(tmp_path / "examples")
    with tfds.testing.mock_data(num_examples=12):
        # mock_data replaces download_and_prepare and the records (no network, random images)
        _, report = run_example_gen("tfds:eurosat/rgb", out, tfds_data_dir=str(tmp_path / "tfds"))
    examples = split_examples(out)
    assert len(examples) > 0 and report["summary"]["examples"] == len(examples)
    assert report["summary"]["kind"] == "tfds" and report["summary"]["source"] == "tfds:eurosat/rgb"
    for e in examples:
        f = e.features.feature
        label = f["label"].int64_list.value[0]
        assert f["class_name"].bytes_list.value[0].decode() == features.class_name(label)
        assert f["source"].bytes_list.value[0].decode().startswith(features.class_name(label) + "/")
        image = features.decode_image(tf.constant(f["image"].bytes_list.value[0]))  # encoded, as stored
        assert image.shape == (64, 64, 3)


def _tfds_all_example(bands, label, filename):
    """What TFDS eurosat/all yields (as numpy): sentinel2 float32 digital numbers, label, filename."""
    return {"sentinel2": bands.astype(np.float32), "label": np.int64(label), "filename": filename.encode()}


def test_tfds_all_examples_become_13_band_contract_examples():
    from schema import features
    from schema.example_data.synthetic import synthetic_band_examples

    bands, label, _ = next(synthetic_band_examples(1, seed=5))
    example = tfds_source.to_example(_tfds_all_example(bands, label, "AnnualCrop_7.tif"))
    assert features.modality_of(example) == features.ALL_BANDS
    f = example.features.feature
    assert f["source"].bytes_list.value[0].decode() == f"{features.class_name(label)}/AnnualCrop_7.tif"
    np.testing.assert_array_equal(np.reshape(f["bands"].int64_list.value, features.BANDS_SHAPE), bands)
    with pytest.raises(ValueError, match="non-integer"):  # scaled reflectances are not digital numbers
        tfds_source.to_example(_tfds_all_example(bands / 10000.0, label, "AnnualCrop_7.tif"))


def test_tfds_all_is_written_through_the_same_code_path(tmp_path, monkeypatch):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from schema import features
    from schema.example_data.synthetic import synthetic_band_examples

    originals = list(synthetic_band_examples(10, seed=6))

    def as_dataset(self, *args, **kwargs):  # what TFDS's prepared eurosat/all yields, no download
        return tf.data.Dataset.from_generator(
            lambda: (_tfds_all_example(b, lbl, s.split("/")[1]) for b, lbl, s in originals),
            output_types=self.info.features.dtype, output_shapes=self.info.features.shape)

    monkeypatch.setattr(tfds_source, "reachable", lambda url: True)  # mock_data "downloads"
    out = str(tmp_path / "examples")
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        _, report = run_example_gen("tfds:eurosat/all", out)
    assert report["summary"]["modality"] == features.ALL_BANDS
    written = {e.features.feature["source"].bytes_list.value[0].decode(): e for e in split_examples(out)}
    assert sorted(written) == sorted(s for _, _, s in originals)
    for bands, label, source in originals:
        f = written[source].features.feature
        assert f["label"].int64_list.value[0] == label
        np.testing.assert_array_equal(np.reshape(f["bands"].int64_list.value, features.BANDS_SHAPE), bands)
