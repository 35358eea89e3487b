"""``admin ...``: the collectivities' realms, partners, users and grants in Keycloak."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from adapter.exceptions import AdapterError
from adapter.cli._common import _config_option, _load
from adapter.cli._main import main


def _admin_options(f: Any) -> Any:
    f = click.option(
        "--keycloak",
        "server_url",
        required=True,
        envvar="NGSILD_ADAPTER_KEYCLOAK_URL",
        help="Keycloak's URL (NGSILD_ADAPTER_KEYCLOAK_URL).",
    )(f)
    f = click.option(
        "--admin-user",
        default="admin",
        show_default=True,
        envvar="NGSILD_ADAPTER_KEYCLOAK_ADMIN",
        help="Keycloak administrator (master realm).",
    )(f)
    return f


def _admin(server_url: str, admin_user: str) -> Any:
    """The identity-admin client; the password comes from NGSILD_ADAPTER_KEYCLOAK_ADMIN_PASSWORD or a prompt."""
    import os

    from adapter.access.admin import IdentityAdmin

    password = os.environ.get("NGSILD_ADAPTER_KEYCLOAK_ADMIN_PASSWORD") or click.prompt(
        f"Keycloak password of {admin_user}", hide_input=True
    )
    return IdentityAdmin(server_url, admin_user, password)


def _admin_run(server_url: str, admin_user: str, operation: Any) -> None:
    try:
        with _admin(server_url, admin_user) as admin:
            result = operation(admin)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.message)
    if result.secret:
        click.echo(f"client secret (shown once; give it to the partner over a safe channel): {result.secret}")


@main.group()
def admin() -> None:
    """Identity administration in Keycloak (idempotent: running a command again changes nothing).

    \b
    ngsild-adapter admin provision metropole --name "Métropole"   a collectivity's realm
    ngsild-adapter admin partner ville ecole-ventilation          a partner platform's client
    ngsild-adapter admin user ville m.durand --role elected-official
    ngsild-adapter admin grant compose/policies/AGREEMENT.jsonld  an agreement into [gateway] policies
    ngsild-adapter admin revoke UID-OR-FILE                       and out of it
    """


@admin.command(name="provision")
@_admin_options
@click.argument("tenant")
@click.option("--name", required=True, help="The collectivity's name.")
def admin_provision(server_url: str, admin_user: str, tenant: str, name: str) -> None:
    """Create (or complete) the realm of collectivity TENANT: roles, groups, token mappers."""
    _admin_run(server_url, admin_user, lambda a: a.provision_collectivity(tenant, name))


@admin.command(name="partner")
@_admin_options
@click.argument("tenant")
@click.argument("client_id")
@click.option("--role", "roles", multiple=True, default=("partner-platform",), show_default=True)
@click.option("--description", default="")
def admin_partner(
    server_url: str, admin_user: str, tenant: str, client_id: str, roles: tuple[str, ...], description: str
) -> None:
    """Register a partner platform: a confidential client (client credentials) of TENANT's realm."""
    _admin_run(
        server_url, admin_user, lambda a: a.register_partner(tenant, client_id, roles=roles, description=description)
    )


@admin.command(name="user")
@_admin_options
@click.argument("tenant")
@click.argument("username")
@click.option("--role", required=True, help="building-manager, elected-official, researcher, data-admin...")
@click.option("--email")
@click.option("--temporary-password", help="To be changed at first login.")
def admin_user(
    server_url: str,
    admin_user: str,
    tenant: str,
    username: str,
    role: str,
    email: str | None,
    temporary_password: str | None,
) -> None:
    """Add a user to TENANT's realm with a role."""
    _admin_run(
        server_url,
        admin_user,
        lambda a: a.add_user(tenant, username, role=role, email=email, temporary_password=temporary_password),
    )


@admin.command(name="grant")
@_admin_options
@_config_option
@click.argument("agreement", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def admin_grant(server_url: str, admin_user: str, config_path: Path | None, agreement: Path) -> None:
    """Check AGREEMENT and its assignee in Keycloak, then put it in the gateway's agreements
    folder ([gateway] policies); a running gateway applies it within seconds."""
    from adapter.access.odrl import Catalogue
    from adapter.mapping.profile import load_profiles

    config = _load(config_path)
    if config.gateway.policies_dir is None:
        raise click.ClickException("no agreements folder: set [gateway] policies")
    catalogue = Catalogue.from_profiles(load_profiles(config.models_dir))
    _admin_run(
        server_url,
        admin_user,
        lambda a: a.grant_agreement(
            agreement, config.gateway.policies_dir, tenants=set(config.collectivities), catalogue=catalogue
        ),
    )


@admin.command(name="revoke")
@_config_option
@click.argument("agreement")
def admin_revoke(config_path: Path | None, agreement: str) -> None:
    """Take an agreement (its uid or file name) out of the gateway's agreements folder.
    A running gateway applies it within seconds."""
    from adapter.access.admin import revoke_agreement_file

    config = _load(config_path)
    if config.gateway.policies_dir is None:
        raise click.ClickException("no agreements folder: set [gateway] policies")
    try:
        result = revoke_agreement_file(agreement, config.gateway.policies_dir)
    except AdapterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.message)
