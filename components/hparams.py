"""The Trainer's hyperparameters: one dataclass, defaults in one place.

The pipeline passes them to the Trainer as `custom_config`, so every run's hyperparameters
are recorded in ML Metadata next to the model they produced. Defaults were chosen by
measurement (benchmarks/train_throughput.py, benchmarks/recipe_ablation.py); each piece of the
recipe can be switched off. Two rules adapt the recipe to the run (README "Why the recipe lost"):

- the budget rule (budget_scale): the regularisers in BUDGET_SCALED are multiplied by
  min(1, epochs x steps per epoch / full_strength_steps), so a short run is not slowed down by
  regularisation that pays off only over many steps (budget_scaling: false turns it off);
- the rate rule (peak_learning_rate): from random initialisation the network trains at
  learning_rate x scratch_lr_factor (3e-3), pretrained features fine-tune at
  learning_rate x fine_tune_lr_factor after a head phase at learning_rate (scratch_lr_factor: 1
  turns it off).
"""
from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal, Mapping, Optional, Tuple, get_args

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from components import settings
from components.settings import (
    Float,
    Fraction,
    Int,
    NonNegativeFloat,
    NonNegativeInt,
    OpenFraction,
    PositiveFloat,
    PositiveInt,
    setting,
)
from schema.modalities import IMAGE_SIZE

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
# Choices are declared as Literal types (what pydantic validates and mypy checks); the tuples derive from them.
Precision = Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
PRECISIONS: Tuple[str, ...] = get_args(Precision)
# The command line's group of the Trainer's flags (components/settings.py: fields with a group get a flag).
TRAINING = "training"
# Augmentation inside the model, training only. "full": flips, 90-degree rotations and (RGB)
# colour jitter, for overhead imagery, which has no "up"; "flips": left-right mirroring only,
# for pictures that have an "up"; "none".
Augmentation = Literal["full", "flips", "none"]
AUGMENTATIONS: Tuple[str, ...] = get_args(Augmentation)
_BOOLEAN_TEXT = {**dict.fromkeys(("true", "yes", "on", "1"), True), **dict.fromkeys(("false", "no", "off", "0"), False)}


def is_hub_handle(backbone: str) -> bool:
    """A TF Hub handle (URL) or a local SavedModel path, rather than a Keras application name."""
    return "/" in backbone or backbone.startswith(("gs:", "."))


def hub_input_size(handle: str) -> int:
    """The input size the TF Hub model `handle` was trained at (DEFAULT_HUB_INPUT_SIZE if unknown)."""
    for key, size in HUB_INPUT_SIZES.items():
        if key in handle:
            return size
    return DEFAULT_HUB_INPUT_SIZE


@dataclass(frozen=True, config=settings.CONFIG)
class HParams:
    """Each hyperparameter declared once (type, default, help; a `group` gives it a flag: components/settings.py).

    Validated on construction: wrong types and ranges are one-line ConfigErrors through from_dict, pydantic
    ValidationErrors when built directly.
    """

    backbone: str = setting("EfficientNetV2B0", f"Keras application ({', '.join(BACKBONES)}) or a TF Hub "
                            "feature-vector handle, URL or local folder", group=TRAINING)
    # Hub backbones carry their weights; "none" is not available for them.
    weights: Optional[str] = setting("imagenet", "'imagenet' (Keras download), a local weights file, or 'none'",
                                     group=TRAINING)
    allow_random_init: bool = setting(False, "train from scratch when the pretrained weights cannot be loaded",
                                      group=TRAINING)
    image_size: Optional[Annotated[Int, Field(ge=32)]] = setting(
        None, f"model input size; >{IMAGE_SIZE} upscales (default: {IMAGE_SIZE} for Keras backbones, the Hub "
        "model's own size, e.g. 512 for EfficientNetV2-XL)", group=TRAINING)
    epochs: PositiveInt = setting(10, "training epochs", group=TRAINING)
    batch_size: PositiveInt = setting(64, "batch size", group=TRAINING)
    learning_rate: PositiveFloat = setting(1e-3, "peak learning rate", group=TRAINING)
    head_epochs: NonNegativeInt = setting(2, "pretrained backbones: epochs training only the new head before "
                                          "fine-tuning everything (0 = one phase)", group=TRAINING)
    fine_tune_lr_factor: Annotated[Float, Field(gt=0, le=1)] = setting(
        0.1, "two-phase fine-tuning: the learning rate of the second phase (everything trains) is "
        "learning_rate times this")
    scratch_lr_factor: PositiveFloat = setting(
        3.0, "from random initialisation (weights none) the one phase trains at learning_rate times this: a "
        "network with nothing learnt yet takes a higher rate than pretrained features, which keep learning_rate "
        "(head) and learning_rate x fine_tune_lr_factor; 1: learning_rate as given (measured: "
        "benchmarks/recipe_ablation.py, README 'Why the recipe lost')")
    optimizer: Literal["adamw", "adam"] = setting("adamw", "'adamw', or 'adam' (the tutorial's)")
    lr_schedule: Literal["cosine", "constant"] = setting(
        "cosine", "'cosine': warm-up then cosine decay, or 'constant' (the tutorial's)")
    warmup_epochs: NonNegativeFloat = setting(1.0, "epochs of linear learning-rate warm-up (cosine schedule)")
    weight_decay: NonNegativeFloat = setting(1e-4, "AdamW's decoupled weight decay")
    gradient_clip_norm: Optional[PositiveFloat] = setting(
        1.0, "clip each step's gradients to this global norm (Keras optimizers' global_clipnorm): from scratch the "
        "first epoch's gradients have norms of 20-40 against 0.05-0.6 in the last, and Adam's second-moment average "
        "(beta_2 0.999, a memory of ~1,000 steps) carries them through a short run; measured: README 'One change "
        "at a time'; null: no clipping")
    label_smoothing: OpenFraction = setting(0.1, "label smoothing of the cross-entropy")
    dropout: OpenFraction = setting(0.2, "dropout before the classification head")
    stochastic_depth: OpenFraction = setting(
        0.2, "Keras EfficientNetV2 backbones: the stochastic-depth rate of the last block (a block's residual "
        "branch is dropped in a training step with a chance rising linearly from 0 at the first block to this); "
        "Keras applications' drop_connect_rate, 0.2. TF Hub backbones keep their own")
    batch_norm_momentum: Annotated[Float, Field(gt=0, lt=1)] = setting(
        0.9, "Keras EfficientNetV2 backbones: the momentum of every BatchNormalization's moving statistics "
        "(Keras applications' bn_momentum, 0.9; Keras' layer default 0.99 left them unsettled after 90 steps from "
        "scratch: 0.316 test accuracy against 0.935, README 'One change at a time'). TF Hub backbones keep their own")
    augment: Augmentation = setting(  # True/False are read as "full"/"none"
        "full", "training augmentation: 'full' flips, 90-degree rotations and colour jitter (overhead imagery "
        "has no 'up'); 'flips' left-right mirroring only, for data with an 'up'; 'none'",
        group=TRAINING, aliases={"--no-augment": "none"})
    colour_jitter: OpenFraction = setting(0.1, "strength of the RGB colour jitter of 'full' augmentation")
    augment_share: Fraction = setting(
        1.0, "the share of each training batch's images that goes through the augmentation (budget rule)")
    early_stopping_patience: NonNegativeInt = setting(
        3, "early stopping on validation accuracy (best weights restored): epochs without improvement")
    early_stopping_start: Fraction = setting(
        0.5, "early stopping counts only from this fraction of the (fine-tuning) epoch budget on: the first "
        "epochs, warm-up included, always run, and their weights (BatchNorm statistics still settling) are "
        "never 'the best'")
    early_stopping_ties: Literal["lower_loss", "earlier"] = setting(
        "lower_loss", "two epochs with the same validation accuracy (a few-hundred-image eval split moves it in steps "
        "of 1/n, so late epochs often tie): 'lower_loss' counts the later one as better when its validation loss is "
        "lower; 'earlier' keeps the first (Keras' EarlyStopping)")
    budget_scaling: bool = setting(
        True, "the budget rule (budget_scale): the regularisers in BUDGET_SCALED are the strengths for a long "
        "run; a run of fewer than full_strength_steps optimiser steps (epochs x steps per epoch) gets them "
        "scaled down in proportion. False: every value exactly as given")
    full_strength_steps: PositiveInt = setting(2000, "optimiser steps from which the budget rule scales nothing")
    precision: Precision = setting(
        "auto", "'auto': mixed float16 on GPUs, float32 on CPUs (see benchmarks/train_throughput.py)",
        group=TRAINING)
    jit_compile: Optional[bool] = setting(None, "XLA: null = auto (on for GPUs), or true/false")
    seed: Int = setting(42, "seed of weight initialisation, shuffling and augmentation")

    @field_validator("augment", mode="before")
    @classmethod
    def _augment_mode(cls, augment: Any) -> Any:
        # The earlier boolean form (configs, recorded runs), also as YAML/flag text.
        if isinstance(augment, str) and augment.lower() in _BOOLEAN_TEXT:
            augment = _BOOLEAN_TEXT[augment.lower()]
        if isinstance(augment, bool):
            return "full" if augment else "none"
        if augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}")
        return augment

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, backbone: str) -> str:
        if backbone not in BACKBONES and not is_hub_handle(backbone):
            raise ValueError(f"unknown backbone; expected one of {', '.join(BACKBONES)}, "
                             "or a TF Hub feature-vector handle (URL or local path)")
        return backbone

    def __post_init__(self) -> None:
        """What one field alone cannot say (pydantic runs this after checking each field)."""
        if self.hub and not self.pretrained:
            raise ValueError(f"TF Hub backbones carry their own weights, got weights={self.weights!r}: "
                             f"drop {settings.flag(HParams, 'weights')} none")

    @property
    def hub(self) -> bool:
        """Whether the backbone is a TF Hub handle or SavedModel path, not a Keras application."""
        return is_hub_handle(self.backbone)

    @property
    def pretrained(self) -> bool:
        """Whether the backbone starts from pretrained weights (weights is not none)."""
        return self.weights not in (None, "", "none")

    @property
    def input_size(self) -> int:
        """The size images are resized to before the backbone."""
        if self.image_size:
            return self.image_size
        return hub_input_size(self.backbone) if self.hub else IMAGE_SIZE

    @property
    def two_phase(self) -> bool:
        """Freeze-then-unfreeze only makes sense for pretrained features."""
        return self.pretrained and self.head_epochs > 0 and self.epochs > self.head_epochs

    @property
    def peak_learning_rate(self) -> float:
        """The peak rate of the phase that trains the whole network.

        Pretrained two-phase runs fine-tune at learning_rate x fine_tune_lr_factor, runs from random initialisation
        train at learning_rate x scratch_lr_factor, a one-phase pretrained run at learning_rate.
        """
        if self.two_phase:
            return self.learning_rate * self.fine_tune_lr_factor
        return self.learning_rate * (1.0 if self.pretrained else self.scratch_lr_factor)

    def budget_scale(self, steps_per_epoch: int) -> float:
        """min(1, total steps / full_strength_steps).

        1 for long runs (EuroSAT's 16,200 training patches at batch 64 reach it in 8 epochs), 0.045 for 90 steps
        from scratch.
        """
        if not self.budget_scaling:
            return 1.0
        return min(1.0, self.epochs * max(1, steps_per_epoch) / self.full_strength_steps)

    def for_budget(self, steps_per_epoch: int) -> "HParams":
        """These hyperparameters with the budget rule applied.

        Each BUDGET_SCALED regulariser multiplied by budget_scale, and the rule then switched off (the values are
        final).
        """
        scale = self.budget_scale(steps_per_epoch)
        return dataclasses.replace(self, budget_scaling=False,
                                   **{name: getattr(self, name) * scale for name in BUDGET_SCALED})

    def to_dict(self) -> dict[str, Any]:
        """The hyperparameters as a plain dict (the Trainer's custom_config)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], prefix: str = "") -> "HParams":
        """HParams from a mapping (YAML, custom_config); bad keys/values are one-line ConfigErrors."""
        return settings.build(cls, values, prefix)


# What the budget rule scales: regularisers, which pay off over many steps and only slow a short
# run down (measured: benchmarks/recipe_ablation.py, README "Why the recipe lost").
BUDGET_SCALED = ("augment_share", "label_smoothing", "weight_decay", "dropout", "stochastic_depth", "colour_jitter")


# The tutorial's recipe, kept for comparison (benchmarks/train_throughput.py): Adam at a
# constant rate (learning_rate as given, from scratch too), no augmentation, no label smoothing,
# no gradient clipping, one phase.
TUTORIAL_RECIPE = dict(
    optimizer="adam", lr_schedule="constant", augment="none", label_smoothing=0.0, head_epochs=0,
    weight_decay=0.0, warmup_epochs=0.0, scratch_lr_factor=1.0, gradient_clip_norm=None,
)
