"""EuroSAT's classes, without TensorFlow or NumPy.

What the REST client ranks by (schema.features re-exports them as part of the example contract).
"""

# EuroSAT's class order (the label ids of TFDS eurosat and of the paper's archive).
CLASS_NAMES: tuple[str, ...] = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)
NUM_CLASSES = len(CLASS_NAMES)
