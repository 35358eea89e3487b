"""ngsild-adapter: LoRaWAN uplinks to FIWARE Smart Data Models entities in NGSI-LD, with provenance.

The public surface is the ``ngsild-adapter`` command and the modules named in the README;
``adapter.pipeline.Pipeline`` is the entry point for embedding.
"""

__version__ = "0.1.0"
