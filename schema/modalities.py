"""The modalities as data: one record per kind of input the pipeline can be built for.

Named like TFDS's EuroSAT configs. Everything that differs between an RGB and a 13-band run
(the feature that carries the pixels, its parsing spec, the curated schema, the serving
signature that takes raw pixels, which files hold such patches, the name suffix that keeps the
two kinds of model apart) is a field here, so code looks it up instead of branching on the
name, and a third modality (a band subset, say) is one more entry.

Pure data: no TensorFlow, so the gRPC client and the command line can read it cheaply.
"""
from __future__ import annotations

import dataclasses
from typing import Collection, Dict, Tuple

# The patch size of EuroSAT (Sentinel-2 at 10 m): every modality's patches are this square.
IMAGE_SIZE = 64

# The 13 Sentinel-2 bands in the order of EuroSAT's all-bands GeoTIFFs: B01 ... B12 in number
# order, then B8A 13th (phelber/EuroSAT#7; torchgeo #2458). ESA's spelling "B8A", as in the band
# files of a product. A model trained on EuroSAT's files learnt this order; the map stacks a
# Sentinel-2 product's bands in it (pipeline/mapping/product.py).
BAND_NAMES: Tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)

TIFF_EXTENSIONS = (".tif", ".tiff")
ENCODED_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclasses.dataclass(frozen=True)
class Modality:
    """What one modality's examples, schema and serving signature look like."""

    name: str  # as in --modality and TFDS (eurosat/<name>)
    description: str  # for people: "encoded RGB images", "13 bands"
    feature_key: str  # the raw tf.Example feature that carries the pixels
    channels: int  # channels of the decoded/standardised image the model sees
    # The pixel feature's tf.Example parsing spec: shape and dtype name ("string": encoded bytes).
    feature_shape: Tuple[int, ...]
    feature_dtype: str
    # The curated raw-example schema, a file of the schema/ folder; "": derived from this record
    # (schema.features.raw_schema, which derives the curated two exactly).
    schema_file: str
    signature: str  # the serving signature that takes raw pixels (no tf.Example around them)
    signature_input: str  # its input name
    input_dtype: str  # its input dtype ("string": encoded image bytes; "uint16": digital numbers)
    file_extensions: Tuple[str, ...]  # files in a class folder that hold such a patch
    name_suffix: str  # appended to pipeline and model names, so the modalities never meet
    # True: a patch travels as an encoded image file (JPEG/PNG bytes, decoded in the graph);
    # False: as its raw values (the uint16 digital numbers of a GeoTIFF, 2 bytes a value).
    encoded: bool
    pixel_dtype: str  # numpy dtype of a patch's values as a raster holds them (scenes, GeoTIFFs)
    patch_noun: str  # what one patch is called in messages: "image", "band values"
    band_names: Tuple[str, ...]  # the Sentinel-2 band of each channel, in the model's order

    @property
    def band_indices(self) -> Tuple[int, ...]:
        """Where each of this modality's bands sits in a 13-band source (EuroSAT's GeoTIFFs, BAND_NAMES order).

        The channels a band-subset modality takes from such a patch.
        """
        return tuple(BAND_NAMES.index(band) for band in self.band_names)

    def with_suffix(self, name: str) -> str:
        """`name` with this modality's suffix (once)."""
        return name if not self.name_suffix or name.endswith(self.name_suffix) else name + self.name_suffix


RGB = Modality(
    name="rgb",
    description="encoded RGB images",
    feature_key="image",
    channels=3,
    feature_shape=(),
    feature_dtype="string",
    schema_file="schema.pbtxt",
    signature="predict_images",
    signature_input="images",
    input_dtype="string",
    file_extensions=ENCODED_IMAGE_EXTENSIONS + TIFF_EXTENSIONS,
    name_suffix="",
    encoded=True,
    pixel_dtype="uint8",
    patch_noun="image",
    band_names=("B04", "B03", "B02"),  # red, green, blue
)

ALL_BANDS = Modality(
    name="all",
    description="13 bands",
    feature_key="bands",
    channels=len(BAND_NAMES),
    feature_shape=(IMAGE_SIZE, IMAGE_SIZE, len(BAND_NAMES)),
    feature_dtype="int64",
    schema_file="schema_all.pbtxt",
    signature="predict_bands",
    signature_input="bands",
    input_dtype="uint16",
    file_extensions=TIFF_EXTENSIONS,
    name_suffix="-all",
    encoded=False,
    pixel_dtype="uint16",
    patch_noun="band values",
    band_names=BAND_NAMES,
)

REGISTRY: Dict[str, Modality] = {m.name: m for m in (RGB, ALL_BANDS)}
NAMES: Tuple[str, ...] = tuple(REGISTRY)  # the built-in ones (command-line choices)
AUTO = "auto"  # --modality auto: read it from the data


def register(modality: Modality) -> Modality:
    """Add `modality` to the registry.

    ValueError when its name, feature, signature or input clash with a registered one's (each must single a modality
    out), or a band is not a Sentinel-2 band.
    """
    for other in REGISTRY.values():
        for field in ("name", "feature_key", "signature", "signature_input"):
            if getattr(other, field) == getattr(modality, field):
                raise ValueError(f"modality {modality.name!r}: {field} {getattr(modality, field)!r} is already "
                                 f"modality {other.name!r}'s; give it its own")
    unknown = [b for b in modality.band_names if b not in BAND_NAMES]
    if unknown:
        raise ValueError(f"modality {modality.name!r}: bands {', '.join(unknown)} are not Sentinel-2 bands "
                         f"({', '.join(BAND_NAMES)})")
    if len(modality.band_names) != modality.channels:
        raise ValueError(f"modality {modality.name!r}: {modality.channels} channels but "
                         f"{len(modality.band_names)} band names; give one band name per channel")
    REGISTRY[modality.name] = modality
    return modality


def get(name: str) -> Modality:
    """The record of modality `name`; ValueError naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"modality must be one of {', '.join(REGISTRY)}, got {name!r}") from None


def of_feature_keys(keys: Collection[str]) -> Modality:
    """The modality whose pixel feature is among `keys`; KeyError when none is.

    `keys` are a tf.Example's or a feature spec's.
    """
    for modality in REGISTRY.values():
        if modality.feature_key in keys:
            return modality
    raise KeyError(sorted(keys))


def of_tiff_bands(count: int) -> Modality:
    """The modality of a set whose GeoTIFFs hold `count` bands.

    The one of raw band values with that many channels (13: ``all``); any other TIFF (1, 3 or 4 bands) is an RGB
    image.
    """
    return next((m for m in REGISTRY.values() if not m.encoded and m.channels == count), RGB)


def of_signature(signature_names: Collection[str]) -> Modality:
    """The modality whose pixel signature is among an exported model's `signature_names`."""
    for modality in REGISTRY.values():
        if modality.signature in signature_names:
            return modality
    raise KeyError(sorted(signature_names))
