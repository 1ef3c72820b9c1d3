"""The resolver strategy of span windows (components.spans.latest_spans, as TFX runs it)."""
from __future__ import annotations

from tfx.dsl.components.common import resolver

from components.spans import latest_spans


class LatestSpansStrategy(resolver.ResolverStrategy):
    """Every input channel resolved to the newest artifact of each of its latest `num_spans` spans.

    After leaving out the `skip_recent` newest (1: the previous span). TFX's SpanRangeStrategy keeps every artifact
    of a span (a re-run's duplicate too) and cannot leave out the current one.
    """

    def __init__(self, num_spans: int = 1, skip_recent: int = 0):
        if num_spans <= 0 or skip_recent < 0:
            raise ValueError(f"num_spans must be >= 1 and skip_recent >= 0, got {num_spans}, {skip_recent}")
        self._num_spans = int(num_spans)
        self._skip_recent = int(skip_recent)

    def resolve_artifacts(self, store, input_dict):
        """Each input channel's artifacts narrowed to the newest one of each of the latest spans."""
        del store
        return {key: latest_spans(list(artifacts), self._num_spans, self._skip_recent)
                for key, artifacts in input_dict.items()}
