"""Shared test set-up: legacy Keras before any TensorFlow import, quiet logs, tiny data."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


@pytest.fixture(scope="session")
def synthetic_records(tmp_path_factory):
    """A small synthetic EuroSAT TFRecord folder (100 images)."""
    from components.synthetic import write_synthetic_tfrecords

    folder = tmp_path_factory.mktemp("synthetic")
    write_synthetic_tfrecords(str(folder), 100, seed=3)
    return str(folder)


# The small CNNs the map, product and training-check tests map with (tests/mapping_fixtures.py):
# trained once per session, read only by the tests.
@pytest.fixture(scope="session")
def rgb_model(tmp_path_factory):
    from schema import features
    from tests import mapping_fixtures

    return mapping_fixtures.train_and_export(str(tmp_path_factory.mktemp("rgb_model")), features.RGB)


@pytest.fixture(scope="session")
def bands_model(tmp_path_factory):
    from schema import features
    from tests import mapping_fixtures

    return mapping_fixtures.train_and_export(str(tmp_path_factory.mktemp("bands_model")), features.ALL_BANDS,
                                             count=500, epochs=15)
