"""The Trainer's hyperparameters: one dataclass, defaults in one place.

The pipeline passes them to the Trainer as `custom_config`, so every run's hyperparameters
are recorded in ML Metadata next to the model they produced.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

# Keras applications backbones the Trainer can build (name -> tf.keras.applications symbol).
BACKBONES = (
    "EfficientNetV2B0",
    "EfficientNetV2B1",
    "EfficientNetV2B2",
    "EfficientNetV2B3",
    "EfficientNetV2S",
    "EfficientNetV2M",
    "EfficientNetV2L",
)


@dataclasses.dataclass(frozen=True)
class HParams:
    backbone: str = "EfficientNetV2B0"
    # "imagenet" (Keras download), a local weights file (.h5 / .weights.h5), or "none".
    weights: Optional[str] = "imagenet"
    # Train from random initialisation when the pretrained weights cannot be had.
    allow_random_init: bool = False
    image_size: int = 64  # model input size; > 64 upscales the 64x64 patches
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    dropout: float = 0.2
    augment: bool = True
    early_stopping_patience: int = 3
    seed: int = 42

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        for name in ("epochs", "batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.dropout < 1:
            raise ValueError("label_smoothing and dropout must lie in [0, 1)")

    @property
    def pretrained(self) -> bool:
        return self.weights not in (None, "", "none")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "HParams":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown hyperparameters {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)
