"""Provenance of every value the adapter produces: where it came from, and proof it was not altered.

A collectivity that reads another's figures (a water bill, an air-quality series behind a
planning decision) must be able to rebuild their history and check that nothing was changed or
silently dropped, without having to trust this adapter's code. ``integrity`` holds the primitives
for that: canonical record digests, an append-only Merkle log per collectivity, signed tree heads
and the static resources that publish the log, all in formats that existing, independent tools
already verify. The PROV-O records and their RDF store build on it.
"""

from __future__ import annotations

__all__: list[str] = []
