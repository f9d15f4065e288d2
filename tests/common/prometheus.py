"""Reads a Prometheus text exposition on stdin with the Prometheus project's own parser
(prometheus_client) and prints one sample a line: name, its labels sorted as k=v joined by
commas, and the value, separated by tabs. A text the parser rejects fails the test."""
import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}\t{labels}\t{s.value!r}")
