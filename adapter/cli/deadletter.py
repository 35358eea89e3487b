"""``deadletter list|show|replay``: what the pipeline or the broker refused, and sending it again."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from adapter.config import AdapterConfig
from adapter.deadletter import DeadLetterStore
from adapter.exceptions import REASONS, AdapterError
from adapter.cli._common import _config_option, _load, _print
from adapter.cli._main import main
from adapter.cli._state import state_dir_option, with_state_dir


@main.group()
def deadletter() -> None:
    """Inspect and replay rejected inputs (kept whole, with their reason)."""


def _config(config_path: Path | None, state_dir: Path | None) -> AdapterConfig:
    return with_state_dir(_load(config_path), state_dir)


def _store(config: AdapterConfig) -> DeadLetterStore:
    return DeadLetterStore(config.state_dir / "deadletters.sqlite")


@deadletter.command(name="list")
@_config_option
@state_dir_option
@click.option("--reason", type=click.Choice(sorted(REASONS)), help="Only this reason.")
@click.option("--all", "show_all", is_flag=True, help="Include the ones already replayed.")
@click.option("--limit", type=int, default=100, show_default=True)
def deadletter_list(
    config_path: Path | None, state_dir: Path | None, reason: str | None, show_all: bool, limit: int
) -> None:
    """List dead letters and the count per reason."""
    store = _store(_config(config_path, state_dir))
    _print(
        {
            "counts": store.counts(status=None if show_all else "open"),
            "dead_letters": [
                d.to_json() for d in store.list(status=None if show_all else "open", reason=reason, limit=limit)
            ],
        }
    )


@deadletter.command(name="show")
@_config_option
@state_dir_option
@click.argument("letter_id", type=int)
def deadletter_show(config_path: Path | None, state_dir: Path | None, letter_id: int) -> None:
    """Show one dead letter with its original body."""
    letter = _store(_config(config_path, state_dir)).get(letter_id)
    if letter is None:
        raise click.ClickException(f"no dead letter {letter_id}")
    _print(letter.to_json(with_body=True))


@deadletter.command(name="replay")
@_config_option
@state_dir_option
@click.option("--id", "letter_ids", type=int, multiple=True, help="Replay this dead letter (repeatable).")
@click.option("--reason", type=click.Choice(sorted(REASONS)), help="Replay every open dead letter with this reason.")
def deadletter_replay(
    config_path: Path | None, state_dir: Path | None, letter_ids: tuple[int, ...], reason: str | None
) -> None:
    """Run dead letters through the pipeline again, once their cause is fixed.

    Every --id must name an open dead letter; otherwise nothing is replayed and the exit
    status is 1."""
    from adapter.app import replay_dead_letters

    if not letter_ids and not reason:
        raise click.UsageError("give --id N or --reason REASON")
    config = _config(config_path, state_dir)
    if letter_ids:
        store = _store(config)
        try:
            letters = {i: store.get(i) for i in letter_ids}
        finally:
            store.close()
        unknown = [str(i) for i, letter in letters.items() if letter is None]
        if unknown:
            raise click.ClickException(f"no dead letter {', '.join(unknown)}; nothing replayed")
        done = [str(i) for i, letter in letters.items() if letter is not None and letter.status != "open"]
        if done:
            raise click.ClickException(f"dead letter {', '.join(done)} already replayed; nothing replayed")
    try:
        outcome = replay_dead_letters(config, ids=letter_ids, reason=reason, emit=lambda r: _print(r.to_json()))
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    _print(dict(Counter(outcome)))
