"""The ``ngsild-adapter`` group; each module of ``adapter.cli`` adds its commands to it."""

from __future__ import annotations

import logging

import click

from adapter import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ngsild-adapter")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    envvar="NGSILD_ADAPTER_LOG_LEVEL",
    help="Log messages on stderr from this level.",
)
def main(log_level: str) -> None:
    """LoRaWAN to NGSI-LD adapter for public bodies sharing territorial IoT data.

    Takes uplinks from ChirpStack v4 or The Things Stack v3, decodes them, and turns them
    into FIWARE Smart Data Models entities for an NGSI-LD broker.

    \b
    Start here:
      ngsild-adapter demo                       the whole chain with a simulated fleet
      ngsild-adapter samples                    the bundled sample events through the pipeline
      ngsild-adapter decode --codec F --fport 1 --hex 0167...   try a codec on a payload
      ngsild-adapter parse --lns chirpstack EVENT.json          see the normalised uplink
      ngsild-adapter map --lns tts EVENT.json                   see the entities it makes
      ngsild-adapter check                      validate configuration and device profiles
      ngsild-adapter listen                     ingest from MQTT/webhooks, deliver to the broker
      ngsild-adapter broker                     run the embedded NGSI-LD broker (development)
      ngsild-adapter verify --tenant T --entity ID --attr no2 --observed-at TIME
                                                check one value against its signed provenance
      ngsild-adapter serve                      serve /sparql, provenance, logs and keys
      ngsild-adapter deadletter list            inspect (and replay) rejected inputs
      ngsild-adapter registry import --once     import device names, tags and locations
                                                from ChirpStack / The Things Stack

    Every command takes --config FILE (or NGSILD_ADAPTER_CONFIG); without it the embedded
    demo configuration is used.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
