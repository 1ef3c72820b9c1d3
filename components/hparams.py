"""The Trainer's hyperparameters: one dataclass, defaults in one place.

The pipeline passes them to the Trainer as `custom_config`, so every run's hyperparameters
are recorded in ML Metadata next to the model they produced. Defaults were chosen by
measurement (benchmarks/train_throughput.py); each piece of the recipe can be switched off.
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
# Input sizes TF Hub EfficientNetV2 feature vectors were trained at (substring of the handle).
HUB_INPUT_SIZES = {
    "imagenet21k_ft1k_xl": 512,
    "imagenet21k_xl": 512,
    "imagenet21k_ft1k_l": 480,
    "imagenet21k_l": 480,
    "imagenet21k_ft1k_m": 480,
    "imagenet21k_m": 480,
    "imagenet21k_ft1k_s": 384,
    "imagenet21k_s": 384,
    "imagenet1k_l": 480,
    "imagenet1k_m": 480,
    "imagenet1k_s": 384,
    "_b3": 300,
    "_b2": 260,
    "_b1": 240,
    "_b0": 224,
}
DEFAULT_HUB_INPUT_SIZE = 224
NATIVE_SIZE = 64  # EuroSAT patches
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
# Augmentation inside the model, training only. "full": flips, 90-degree rotations and (RGB)
# colour jitter, for overhead imagery, which has no "up"; "flips": left-right mirroring only,
# for pictures that have an "up"; "none".
AUGMENTATIONS = ("full", "flips", "none")


def is_hub_handle(backbone: str) -> bool:
    """A TF Hub handle (URL) or a local SavedModel path, rather than a Keras application name."""
    return "/" in backbone or backbone.startswith(("gs:", "."))


def hub_input_size(handle: str) -> int:
    for key, size in HUB_INPUT_SIZES.items():
        if key in handle:
            return size
    return DEFAULT_HUB_INPUT_SIZE


@dataclasses.dataclass(frozen=True)
class HParams:
    # A Keras application name (BACKBONES) or a TF Hub feature-vector handle: URL or local path.
    backbone: str = "EfficientNetV2B0"
    # Keras backbones: "imagenet" (Keras download), a local weights file, or "none".
    # Hub backbones carry their weights; "none" is not available for them.
    weights: Optional[str] = "imagenet"
    # Train from random initialisation when the pretrained weights cannot be had.
    allow_random_init: bool = False
    # Model input size; None: the backbone's own (64 for Keras apps, the Hub model's size).
    image_size: Optional[int] = None
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    # Two-phase fine-tuning (pretrained weights only): head_epochs with the backbone frozen,
    # then everything at learning_rate * fine_tune_lr_factor.
    head_epochs: int = 2
    fine_tune_lr_factor: float = 0.1
    optimizer: str = "adamw"  # or "adam" (the tutorial's)
    lr_schedule: str = "cosine"  # warm-up then cosine decay, or "constant" (the tutorial's)
    warmup_epochs: float = 1.0
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    dropout: float = 0.2
    augment: str = "full"  # AUGMENTATIONS; True/False are read as "full"/"none"
    colour_jitter: float = 0.1
    # Early stopping on validation accuracy with the best weights restored, counting only from
    # this fraction of the (fine-tuning) epoch budget on: the first epochs, warm-up included,
    # always run, and their weights (BatchNorm statistics still settling) are never "the best".
    early_stopping_patience: int = 3
    early_stopping_start: float = 0.5
    # "auto": mixed_float16 on GPUs, float32 on CPUs (see benchmarks/train_throughput.py).
    precision: str = "auto"
    # XLA: None = auto (on for GPUs), or True/False.
    jit_compile: Optional[bool] = None
    seed: int = 42

    def __post_init__(self) -> None:
        if isinstance(self.augment, bool):  # the earlier boolean form (configs, recorded runs)
            object.__setattr__(self, "augment", "full" if self.augment else "none")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {self.augment!r}")
        if not 0 <= self.early_stopping_start <= 1:
            raise ValueError(f"early_stopping_start must lie in [0, 1], got {self.early_stopping_start}")
        if self.backbone not in BACKBONES and not is_hub_handle(self.backbone):
            raise ValueError(
                f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)} "
                "or give a TF Hub feature-vector handle (URL or local path)"
            )
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size is not None and self.image_size < 32:
            raise ValueError(f"image_size must be >= 32 (or unset), got {self.image_size}")
        if self.learning_rate <= 0 or not 0 < self.fine_tune_lr_factor <= 1:
            raise ValueError("learning_rate must be > 0 and fine_tune_lr_factor in (0, 1]")
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.dropout < 1:
            raise ValueError("label_smoothing and dropout must lie in [0, 1)")
        if self.head_epochs < 0:
            raise ValueError(f"head_epochs must be >= 0, got {self.head_epochs}")
        if self.optimizer not in ("adamw", "adam") or self.lr_schedule not in ("cosine", "constant"):
            raise ValueError("optimizer must be adamw|adam and lr_schedule cosine|constant")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.hub and not self.pretrained:
            raise ValueError("TF Hub backbones carry their own weights: drop --weights none")

    @property
    def hub(self) -> bool:
        return is_hub_handle(self.backbone)

    @property
    def pretrained(self) -> bool:
        return self.weights not in (None, "", "none")

    @property
    def input_size(self) -> int:
        """The size images are resized to before the backbone."""
        if self.image_size:
            return self.image_size
        return hub_input_size(self.backbone) if self.hub else NATIVE_SIZE

    @property
    def two_phase(self) -> bool:
        """Freeze-then-unfreeze only makes sense for pretrained features."""
        return self.pretrained and self.head_epochs > 0 and self.epochs > self.head_epochs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "HParams":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown hyperparameters {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)


# The tutorial's recipe, kept for comparison (benchmarks/train_throughput.py): Adam at a
# constant rate, no augmentation, no label smoothing, one phase.
TUTORIAL_RECIPE = dict(
    optimizer="adam", lr_schedule="constant", augment="none", label_smoothing=0.0, head_epochs=0,
    weight_decay=0.0, warmup_epochs=0.0,
)
