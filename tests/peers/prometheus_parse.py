"""Parses the Prometheus text format with the reference Python client's parser (PyPI
`prometheus-client`), driven by tests/metrics.rs.

Reads an exposition on stdin; prints the metric families as JSON:
  [{"name": ..., "type": ..., "samples": [{"name": ..., "labels": {...}, "value": ...}]}]
A malformed exposition makes the parser raise, and the script exit non-zero.
"""

import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    families = [
        {
            "name": family.name,
            "type": family.type,
            "samples": [
                {"name": s.name, "labels": s.labels, "value": s.value}
                for s in family.samples
            ],
        }
        for family in text_string_to_metric_families(sys.stdin.read())
    ]
    json.dump(families, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
