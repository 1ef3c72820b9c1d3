"""Is the scene like the model's training data? Its per-band statistics against the model's.

The model carries the train split's per-band statistics (serving/training_statistics.py), in the
units its pixel signature takes: RGB the uint8 values after EuroSAT's DN scaling, 13 bands the
digital numbers. ``SceneStatistics`` gathers the same of the patches mapped, strip by strip, in a
few numbers per band (bounded memory; Beam merges the strips' partial statistics): the number of
patches, the sum of their means, and how many patch means fall outside the training's 1st..99th
percentile of patch means. ``compare`` calls a band out of range when more than
``MAX_OUTSIDE_SHARE`` of the scene's patches lie outside that range: a scene stitched from the
model's own test split has about 2 % there, a scene of one land cover inside the training's
classes stays inside too, and an offset, another product level or a band order moves most patches
out. It then names the likely cause:

- **L2A** surface reflectance fed to an L1C model: B10 (cirrus, absent from L2A) near 0;
- **the radiometric offset** (processing baseline >= 04.00, DN + 1000) left in: every band about
  +1000 DN brighter;
- **a wrong band order**: the scene's band means match the training's under a permutation;
- otherwise **a wrong scaling** (every band the same factor off) or **another sensor / processing**.

``summary`` gives the ``training_data_check`` block of summary.json and logs one line: a warning
when a band is out of range, or when the check cannot be done (a model exported before it carried
statistics, an endpoint without --training-statistics), saying why.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from schema import modalities
from schema.locations import is_local

log = logging.getLogger(__name__)

MAX_OUTSIDE_SHARE = 0.5  # a band is out of range when more of the scene's patch means lie outside p01..p99
RADIOMETRIC_OFFSET_DN = 1000.0  # Sentinel-2's RADIO_ADD_OFFSET / BOA_ADD_OFFSET since baseline 04.00 (-1000)
OFFSET_TOLERANCE = 0.4  # every band shifted by 1000 DN +- 40 % reads as the offset
L2A_B10_FACTOR = 0.25  # B10 below a quarter of the training's mean reads as L2A (which has no B10)
PERMUTATION_GAIN = 0.5  # a band order that fits the means at least twice as well as the scene's own
MOVE_PENALTY_SD = 1.0  # ... where moving a band must gain more than this (in training sds): no chance swaps
SCALE_SPREAD = 0.2  # every band's scene/training ratio within 20 % of their median reads as a scaling
LISTED_BANDS = 5  # the warning line names at most this many bands (the summary all)


class SceneStatistics:
    """Per-band statistics of the patches mapped, gathered batch by batch; `merge` adds another's."""

    def __init__(self, channels: int, low: Optional[np.ndarray] = None, high: Optional[np.ndarray] = None):
        self.patches = 0
        self.mean_sum = np.zeros(channels)
        self.below = np.zeros(channels, np.int64)
        self.above = np.zeros(channels, np.int64)
        self.nonfinite_pixels = 0  # NaN / inf pixels, which are nodata
        self.low, self.high = low, high

    @classmethod
    def for_training(cls, training: Optional[dict], channels: int) -> "SceneStatistics":
        """Empty statistics that count against the training's p01..p99 when its bands match `channels`."""
        if not training or len(training["bands"]) != channels:
            return cls(channels)
        low, high = (np.array([b["patch_mean"][k] for b in training["bands"].values()]) for k in ("p01", "p99"))
        return cls(channels, low, high)

    def add(self, pixels: np.ndarray, nonfinite_pixels: int = 0) -> None:
        """`pixels` [n, 64, 64, C] of the patches classified, as the model takes them."""
        self.nonfinite_pixels += int(nonfinite_pixels)
        if not len(pixels):
            return
        means = pixels.reshape(len(pixels), -1, pixels.shape[-1]).mean(1, dtype=np.float64)
        self.patches += len(means)
        self.mean_sum += means.sum(0)
        if self.low is not None:
            self.below += (means < self.low).sum(0)
            self.above += (means > self.high).sum(0)

    def merge(self, other: "SceneStatistics") -> "SceneStatistics":
        """Add `other`'s counts to these and return them."""
        self.patches += other.patches
        self.mean_sum += other.mean_sum
        self.below += other.below
        self.above += other.above
        self.nonfinite_pixels += other.nonfinite_pixels
        return self

    def observe(self, strips: Iterable) -> Iterator:
        """The strips (scene.Strip) passed through, their classified patches added on the way."""
        for strip in strips:
            self.add(strip.pixels, strip.nonfinite)
            yield strip

    @property
    def means(self) -> np.ndarray:
        """The scene's mean of patch means per band."""
        return self.mean_sum / max(self.patches, 1)


def merge_all(parts: Iterable[SceneStatistics]) -> Optional[SceneStatistics]:
    """Beam's combiner: the statistics of all strips of a scene (None for none); the parts stay as they are."""
    import copy

    total = None
    for part in parts:
        total = copy.deepcopy(part) if total is None else total.merge(part)
    return total


def dn_per_unit(modality: str, dn_range: Tuple[float, float]) -> float:
    """Digital numbers per unit of the model's pixels: 8-bit models see (high - low) / 254 DN a step."""
    if np.dtype(modalities.get(modality).pixel_dtype) == np.uint8:
        return (dn_range[1] - dn_range[0]) / 254.0
    return 1.0


def likely_cause(names: Sequence[str], scene: np.ndarray, train: np.ndarray, spread: np.ndarray,
                 out: np.ndarray, dn_scale: float) -> str:
    """The likeliest reason the scene's band means `scene` differ from the training's `train`."""
    if "B10" in names:
        b10 = list(names).index("B10")
        if train[b10] > 0 and scene[b10] < L2A_B10_FACTOR * train[b10]:
            return (f"L2A surface reflectance fed to an L1C model (B10 {scene[b10]:.0f} DN against "
                    f"{train[b10]:.0f} in training; L2A has no cirrus band): map an L1C product")
    shift_dn = (scene - train) * dn_scale
    if np.all(np.abs(shift_dn - RADIOMETRIC_OFFSET_DN) <= OFFSET_TOLERANCE * RADIOMETRIC_OFFSET_DN):
        return (f"the radiometric offset left in (every band +{np.median(shift_dn):.0f} DN; processing baseline "
                ">= 04.00 adds 1000): subtract it (RADIO_ADD_OFFSET) before mapping")
    order = best_band_order(scene, train, spread)
    if order is not None:
        moved = [f"band {i + 1} (should be {names[i]}) looks like {names[j]}" for i, j in enumerate(order) if i != j]
        return f"a wrong band order ({', '.join(moved)}): stack the bands in the model's order {', '.join(names)}"
    ratio = scene / np.maximum(train, 1e-9)
    median = float(np.median(ratio))
    if np.all(np.abs(ratio - median) <= SCALE_SPREAD * median) and not 0.8 <= median <= 1.25:
        return (f"a wrong scaling (every band {median:.2f}x the training's): check --dn-range and that the "
                "scene holds digital numbers")
    return "another sensor or another processing than the training data's (Sentinel-2 L1C)"


def best_band_order(scene: np.ndarray, train: np.ndarray, spread: np.ndarray) -> Optional[List[int]]:
    """The band permutation that fits the training's band means much better than the scene's own order.

    The permutation (scene band i -> training band order[i]) that fits the band means at least 1 / PERMUTATION_GAIN
    times better than the scene's own order; None when there is none.
    """
    from scipy.optimize import linear_sum_assignment

    cost = np.abs(scene[:, None] - train[None, :]) / np.maximum(spread[None, :], 1e-9)
    rows, cols = linear_sum_assignment(cost + MOVE_PENALTY_SD * (1 - np.eye(len(scene))))
    own = float(np.trace(cost))
    best = float(cost[rows, cols].sum())
    if list(cols) == list(range(len(scene))) or best > PERMUTATION_GAIN * own:
        return None
    return [int(c) for c in cols]


def compare(scene: SceneStatistics, training: dict, modality: str, dn_range: Tuple[float, float]) -> dict:
    """The training_data_check block: each band against the training's, the bands out of range, the cause."""
    names = list(training["band_order"])
    bands = [training["bands"][n] for n in names]
    train = np.array([b["patch_mean"]["mean"] for b in bands])
    spread = np.maximum(np.array([b["patch_mean"]["std"] for b in bands]), 1e-9)
    means = scene.means
    outside = (scene.below + scene.above) / max(scene.patches, 1)
    out = outside > MAX_OUTSIDE_SHARE
    scale = dn_per_unit(modality, dn_range)
    unit = "DN" if scale == 1.0 else "(8-bit)"
    per_band: Dict[str, Dict[str, Any]] = {}
    for i, name in enumerate(names):
        per_band[name] = {"scene_mean": round(float(means[i]), 2), "training_mean": round(float(train[i]), 2),
                          "training_p01_p99": [bands[i]["patch_mean"]["p01"], bands[i]["patch_mean"]["p99"]],
                          "shift": round(float(means[i] - train[i]), 2),
                          "shift_sd": round(float((means[i] - train[i]) / spread[i]), 2),
                          "patches_outside": round(float(outside[i]), 3), "out_of_range": bool(out[i])}
    result = {"status": "ok", "patches": scene.patches, "units": training.get("units"),
              "max_outside_share": MAX_OUTSIDE_SHARE, "bands_out_of_range": [n for n, o in zip(names, out) if o],
              "likely_cause": None, "bands": per_band}
    if out.any():
        cause = likely_cause(names, means, train, spread, out, scale)
        worst = sorted(np.flatnonzero(out), key=lambda i: -abs(per_band[names[i]]["shift_sd"]))
        listed = [f"{names[i]} {per_band[names[i]]['shift']:+.0f} {unit} ({per_band[names[i]]['shift_sd']:+.1f} sd, "
                  f"{100 * outside[i]:.0f} % of patches outside)" for i in worst[:LISTED_BANDS]]
        more = f" and {len(worst) - LISTED_BANDS} more" if len(worst) > LISTED_BANDS else ""
        result.update(status="warning", likely_cause=cause, message=(
            f"the scene is unlike the model's training data in {int(out.sum())} of {len(names)} bands: "
            f"{'; '.join(listed)}{more}; likely cause: {cause}. The map's classes are not to be trusted"))
    return result


def unchecked(reason: str) -> dict:
    """The training_data_check block of a check not done, with why."""
    return {"status": "unchecked", "reason": reason}


def summary(scene: SceneStatistics, training: Optional[dict], no_statistics_reason: str, modality: str,
            dn_range: Tuple[float, float]) -> dict:
    """{"training_data_check": {...}, "pixels_nonfinite": n} for summary.json; logs its one line."""
    expected = list(modalities.get(modality).band_names)
    if training is None:
        block = unchecked(no_statistics_reason)
    elif len(training["band_order"]) != len(expected):
        block = unchecked(f"the training statistics are of {len(training['band_order'])} bands "
                          f"({', '.join(training['band_order'])}), the model takes {len(expected)}: give the "
                          "model's own statistics")
    elif not scene.patches:
        block = unchecked("no patch was classified")
    else:
        block = compare(scene, training, modality, dn_range)
    if block["status"] == "warning":
        log.warning("training-data check: %s", block["message"])
    elif block["status"] == "unchecked":
        log.warning("training-data check: not done: %s", block["reason"])
    else:
        # compared, so the training statistics have the model's len(expected) bands
        log.info("training-data check: the scene is like the training data in all %d bands", len(expected))
    return {"training_data_check": block, "pixels_nonfinite": scene.nonfinite_pixels}


NO_STATISTICS_FIX = ("re-export it with this project's Trainer, or give --training-statistics FILE "
                     "(a model's assets.extra/training_statistics.json)")


def statistics_of_model(export_dir: str) -> Tuple[Optional[dict], str]:
    """(the statistics a SavedModel carries or None, why there are none)."""
    from pipeline.mapping.errors import MapError
    from serving import training_statistics

    try:
        found = training_statistics.read_from_model(export_dir)
    except ValueError as err:
        raise MapError(f"--model: {err}; {NO_STATISTICS_FIX}") from None
    return found, (f"model {export_dir!r} carries no training statistics (no {training_statistics.ASSETS_EXTRA}/"
                   f"{training_statistics.FILE}: exported before models carried them); {NO_STATISTICS_FIX}")


def statistics_file(path: str) -> dict:
    """--training-statistics FILE, or MapError saying what it is not."""
    import os

    from pipeline.mapping.errors import MapError
    from serving import training_statistics

    if is_local(path) and not os.path.isfile(path):
        raise MapError(f"--training-statistics {path!r}: no such file; give a model's "
                       f"{training_statistics.ASSETS_EXTRA}/{training_statistics.FILE}")
    try:
        return training_statistics.read(path)
    except ValueError as err:
        raise MapError(f"--training-statistics: {err}") from None
