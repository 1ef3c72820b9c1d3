"""How examples are stored between the ingesters and ExampleGen: file names, markers, split names.

Pure constants and one predicate, no TensorFlow: every ingester writes by them and the pipeline
reads by them, so "is this a TFRecord file" or "is this folder complete" has one answer.
"""
import fnmatch

# ExampleGen's split names, in order (published split files call the middle one "val").
SPLIT_NAMES = ("train", "eval", "test")
# What counts as a TFRecord file: ExampleGen's input pattern (plain or .gz, sharded or not).
RECORD_PATTERN = "*tfrecord*"
# Written last into a folder of converted or generated records: the folder is complete, reuse it.
COMPLETE_MARKER = "_COMPLETE"
# The share of unusable files a source of images may have before the conversion stops.
DEFAULT_MAX_BAD_FRACTION = 0.01


def is_record_file(name: str) -> bool:
    """Whether file `name` (a base name) matches RECORD_PATTERN."""
    return fnmatch.fnmatchcase(name, RECORD_PATTERN)
