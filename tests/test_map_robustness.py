"""The map against damaged input and unlucky operators (issues 20.3, 20.6, 26.9, 26.10): --compare's
transitions and grid check, outputs that replace an earlier map only when whole, Ctrl-C, truncated
scenes, unusable --output folders and a full disk: one line, exit code 2 (130 for Ctrl-C), and an
earlier map left as it was.

What is written where does not depend on the model, so these tests classify with a stand-in
(``BrightnessPredictor``: a patch's class from its mean brightness) instead of training one."""
from __future__ import annotations

import errno
import glob
import json
import os
import shutil
from typing import Optional

import numpy as np
import pytest
import rasterio

import pipeline_runner
from pipeline.mapping import change, folders, landuse, outputs, predictors
from pipeline.mapping.errors import MapError
from schema import features
from schema.example_data import synthetic


class BrightnessPredictor:
    """A patch's class from its mean brightness (deterministic); `fail` is raised on call `fail_at`."""

    modality = features.RGB
    model, version = "brightness", "1"

    def __init__(self, fail_at: int = 0, fail: Optional[BaseException] = None):
        self.fail_at, self.fail, self.calls = fail_at, fail or RuntimeError("the model failed"), 0

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        return pixels

    def run(self, pixels: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.fail_at and self.calls >= self.fail_at:
            raise self.fail
        ids = pixels.mean(axis=(1, 2, 3)).astype(int) % features.NUM_CLASSES  # every class in a scene
        probabilities = np.full((len(pixels), features.NUM_CLASSES), 0.01, np.float32)
        probabilities[np.arange(len(pixels)), ids] = 0.91
        return probabilities

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        return self.run(self.encode(pixels))


OPTIONS = landuse.MapOptions(batch_size=16)  # 90 patches: 6 batches, so a failure can come mid-map


def layout(rows: int = 9) -> np.ndarray:
    return (np.arange(10)[None, :] + np.arange(rows)[:, None]) % features.NUM_CLASSES


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> str:
    return synthetic.write_synthetic_scene(str(tmp_path_factory.mktemp("scene") / "scene.tif"), layout(), seed=1)


def files_of(folder) -> dict:
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def no_partial_folders(folder) -> bool:
    return not glob.glob(os.path.join(os.path.dirname(os.path.abspath(folder)), ".*.partial-*"))


@pytest.fixture
def earlier_map(scene, tmp_path):
    """A finished map in tmp_path/out, and its files' bytes."""
    out = tmp_path / "out"
    landuse.map_scene(scene, BrightnessPredictor(), str(out), OPTIONS)
    return out, files_of(out)


# --model must exist (the command line checks it before TensorFlow loads); the predictor is a stand-in
STAND_IN_MODEL = os.path.dirname(os.path.abspath(__file__))


def run_map(monkeypatch, capsys, predictor, argv) -> tuple:
    """pipeline_runner.py map with `predictor` for --model; (exit code, stderr)."""
    monkeypatch.setattr(predictors, "SavedModelPredictor", lambda path: predictor)
    try:
        code = pipeline_runner.main(["map", "--model", STAND_IN_MODEL, *argv])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped the command line")
    return code, capsys.readouterr().err


def one_line(err: str, start: str = "error: ") -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith(start), err
    return lines[-1]


# --- 20.3: a class to itself is no transition ----------------------------------------------------
def test_identical_maps_list_no_transitions(scene, earlier_map, tmp_path):
    again = tmp_path / "again"
    landuse.map_scene(scene, BrightnessPredictor(), str(again), OPTIONS)
    result = change.compare(str(earlier_map[0]), str(again))
    assert result["changed"] == 0.0 and result["compared"] > 0
    assert result["largest_transitions"] == []  # was AnnualCrop -> AnnualCrop and the like


def test_largest_transitions_are_changes_only(earlier_map, tmp_path):
    later = tmp_path / "later"
    shutil.copytree(earlier_map[0], later)
    with rasterio.open(later / "landuse.tif", "r+") as dst:  # one cell changes class
        classes = dst.read(1)
        was = int(classes[4, 5])
        classes[4, 5] = (was + 1) % features.NUM_CLASSES
        dst.write(classes, 1)
    result = change.compare(str(earlier_map[0]), str(later))
    assert result["changed"] == pytest.approx(40.96)  # one 640 m cell
    assert result["largest_transitions"] == [{"from": features.CLASS_NAMES[was], "ha": 40.96,
                                              "to": features.CLASS_NAMES[(was + 1) % features.NUM_CLASSES]}]


# --- 20.6: --compare checks the grid before any inference and writes nothing on a mismatch ----------
def test_compare_checks_the_grid_before_mapping(monkeypatch, capsys, earlier_map, tmp_path):
    smaller = synthetic.write_synthetic_scene(str(tmp_path / "smaller.tif"), layout(6), seed=2)
    predictor = BrightnessPredictor()
    new = tmp_path / "new"
    code, err = run_map(monkeypatch, capsys, predictor, ["--input", smaller, "--output", str(new),
                                                         "--compare", str(earlier_map[0])])
    assert code == 2 and "is not on this map's grid (size 10x9 cells vs 10x6)" in one_line(err)
    assert predictor.calls == 0  # before any inference
    assert not new.exists() and no_partial_folders(new)
    code, err = run_map(monkeypatch, capsys, predictor, ["--input", smaller, "--output", str(earlier_map[0]),
                                                         "--compare", str(earlier_map[0])])
    assert code == 2 and predictor.calls == 0
    assert files_of(earlier_map[0]) == earlier_map[1]


def test_compare_writes_its_files_into_the_map_before_it_moves_in(monkeypatch, capsys, scene, earlier_map,
                                                                   tmp_path):
    later = tmp_path / "later"
    code, _ = run_map(monkeypatch, capsys, BrightnessPredictor(), ["--input", scene, "--output", str(later),
                                                                   "--compare", str(earlier_map[0])])
    assert code == 0
    assert sorted(os.listdir(later)) == sorted(outputs.FILES + folders.CHANGE_FILES)
    assert json.loads((later / "summary.json").read_text())["change"]["changed"] == 0.0
    landuse.map_scene(scene, BrightnessPredictor(), str(later), OPTIONS)  # again without --compare
    assert sorted(os.listdir(later)) == sorted(outputs.FILES)  # no change.png of another run beside it


def test_compare_refuses_an_incomplete_map(earlier_map, tmp_path):
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "landuse.tif").write_bytes((earlier_map[0] / "landuse.tif").read_bytes())
    with pytest.raises(MapError, match="no summary.json beside its landuse.tif, so that map was not written"):
        change.compare(str(cut), str(earlier_map[0]))


# --- 26.9: a map replaces an earlier one only when whole; Ctrl-C --------------------------------------
def test_a_failed_map_leaves_the_earlier_map_as_it_was(scene, earlier_map):
    out, before = earlier_map
    (out / "notes.txt").write_text("the user's own file")
    failing = BrightnessPredictor(fail_at=3)
    with pytest.raises(RuntimeError, match="the model failed"):
        landuse.map_scene(scene, failing, str(out), OPTIONS)
    assert failing.calls == 3  # it failed mid-map, after tiles.csv had rows
    assert files_of(out) == {**before, "notes.txt": b"the user's own file"}
    assert no_partial_folders(out)
    summary = landuse.map_scene(scene, BrightnessPredictor(), str(out), landuse.MapOptions(stride=32))
    assert summary["stride_px"] == 32 and (out / "notes.txt").exists()
    with rasterio.open(out / "landuse.tif") as src:
        assert src.shape == (18, 20)
    assert len((out / "tiles.csv").read_text().splitlines()) == 1 + summary["tiles_classified"]
    assert no_partial_folders(out)


def test_a_new_map_folder_gets_the_usual_permissions(scene, tmp_path):
    landuse.map_scene(scene, BrightnessPredictor(), str(tmp_path / "fresh"), OPTIONS)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "fresh").st_mode & 0o777 == 0o777 & ~umask


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys, scene, earlier_map):
    out, before = earlier_map
    code, err = run_map(monkeypatch, capsys, BrightnessPredictor(fail_at=2, fail=KeyboardInterrupt()),
                        ["--input", scene, "--output", str(out)])
    assert code == 130
    assert "an earlier map there is as it was" in one_line(err, "interrupted: ")
    assert files_of(out) == before and no_partial_folders(out)


# --- 26.10: one line, not a traceback ------------------------------------------------------------
def test_truncated_scene_is_one_line(monkeypatch, capsys, scene, tmp_path):
    cut = tmp_path / "cut.tif"
    data = open(scene, "rb").read()
    cut.write_bytes(data[: len(data) // 2])
    code, err = run_map(monkeypatch, capsys, BrightnessPredictor(), ["--input", str(cut), "--output",
                                                                     str(tmp_path / "out")])
    assert code == 2
    line = one_line(err)
    assert "cut.tif" in line and "GDAL cannot read its pixel rows" in line and "truncated or damaged" in line
    assert not (tmp_path / "out").exists() and no_partial_folders(tmp_path / "out")


def test_output_that_cannot_be_a_folder_is_refused_before_the_model_loads(monkeypatch, capsys, scene, tmp_path):
    loaded = []
    monkeypatch.setattr(predictors, "SavedModelPredictor", lambda path: loaded.append(path))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: str(p) != str(locked) and real_access(p, mode))
    for output, expected in ((a_file, "is a file, not a folder"), (a_file / "maps" / "2024", "which is a file"),
                             (locked, "no permission to write in"), (locked / "2024", "no permission to write in")):
        assert pipeline_runner.main(["map", "--model", STAND_IN_MODEL, "--input", scene, "--output", str(output)]) == 2
        line = one_line(capsys.readouterr().err)
        assert repr(str(output)) in line and expected in line
    assert loaded == [] and a_file.read_text() == "x" and os.listdir(locked) == []


def test_a_map_is_staged_inside_an_output_whose_parent_is_read_only(monkeypatch, scene, earlier_map):
    out, before = earlier_map  # --output . in a folder we may not write beside
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: str(p) != str(out.parent) and real_access(p, mode))
    made = []
    real_mkdir = os.mkdir
    monkeypatch.setattr(os, "mkdir", lambda path, *a, **k: made.append(path) or real_mkdir(path, *a, **k))
    summary = landuse.map_scene(scene, BrightnessPredictor(), str(out), landuse.MapOptions(stride=32))
    assert summary["stride_px"] == 32 and [os.path.dirname(m) for m in made if ".partial-" in m] == [str(out)]
    assert sorted(os.listdir(out)) == sorted(before)  # the partial folder inside is gone
    with pytest.raises(RuntimeError):
        landuse.map_scene(scene, BrightnessPredictor(fail_at=2), str(out), OPTIONS)
    with rasterio.open(out / "landuse.tif") as src:
        assert src.shape == (18, 20)  # still the stride-32 map
    assert sorted(os.listdir(out)) == sorted(before)


def test_output_folder_that_cannot_be_made_is_one_line(monkeypatch, scene, tmp_path):
    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(os, "mkdir", refuse)  # what a read-only file system answers
    with pytest.raises(MapError, match="cannot write there \\(Permission denied: .*partial"):
        landuse.map_scene(scene, BrightnessPredictor(), str(tmp_path / "out"), OPTIONS)


@pytest.mark.parametrize("where", ["write_png", "write_geotiff"])
def test_full_disk_is_one_line_and_keeps_the_earlier_map(monkeypatch, capsys, scene, earlier_map, where):
    out, before = earlier_map

    def full(path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs, where, full)
    code, err = run_map(monkeypatch, capsys, BrightnessPredictor(), ["--input", scene, "--output", str(out)])
    assert code == 2
    assert "the disk is full (No space left on device)" in one_line(err) and repr(str(out)) in err
    assert files_of(out) == before and no_partial_folders(out)



def test_gdal_write_failure_on_a_full_disk_is_a_full_disk(monkeypatch, tmp_path):
    import shutil as shutil_module

    from rasterio.errors import RasterioIOError

    def failing_open(*args, **kwargs):
        raise RasterioIOError("Write failed. See previous exception for details.")  # GDAL on a full disk

    monkeypatch.setattr(rasterio, "open", failing_open)
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: shutil_module._ntuple_diskusage(10**6, 10**6, 100))
    values = np.zeros((30, 30), np.uint8)
    with pytest.raises(OSError) as raised:
        outputs.write_geotiff(str(tmp_path / "landuse.tif"), values, None, rasterio.Affine.identity(), 255)
    assert raised.value.errno == errno.ENOSPC


def test_a_local_map_to_a_cloud_folder_is_refused(scene, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MapError, match="written to a local folder; give one, or map with --beam"):
        landuse.map_scene(scene, BrightnessPredictor(), "gs://bucket/maps", OPTIONS)
    assert os.listdir(tmp_path) == []
