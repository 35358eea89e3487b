"""What identity administrators do: collectivities' realms, partners, users, sharing agreements.

``IdentityAdmin`` drives Keycloak's admin API (python-keycloak, sync) with an account of the
``master`` realm (the server's administrators), given by the caller: nothing is read from the
repository. Every operation is idempotent: a second call changes nothing and says so, and every
one returns an ``AdminResult`` saying what it created and what was already there::

    admin = IdentityAdmin("https://auth.example.org", "admin", password)
    admin.provision_collectivity("metropole", "Métropole")       # the realm, like the shipped ones
    partner = admin.register_partner("metropole", "ecoles-ventilation")
    print(partner.secret)                                         # once: a second call says "already registered"
    admin.add_user("metropole", "j.martin", role="elected-official", temporary_password=generated)
    result = admin.grant_agreement(Path("new.jsonld"), Path("/etc/ngsild-adapter/policies"),
                                   tenants={"metropole", "region"}, catalogue=catalogue)
    print("\\n".join(result.description))                        # what it grants, in plain words
    admin.revoke_agreement("urn:ngsild-adapter:agreement:new", Path("/etc/ngsild-adapter/policies"))

A collectivity's realm is built from ``compose/keycloak/ville-realm.json`` (``REALM_TEMPLATE``),
so provisioned and shipped realms stay alike: its realm settings, the five realm roles, its
groups per service, its client scopes (the ``ngsild`` scope with ``organization`` set to the new
collectivity) and its clients without a secret (``ngsild-gateway``, ``cli``); its users,
partner clients, identity providers and flows are left out. A realm that already exists is
completed, never reshaped: missing roles, groups, scopes, mappers and clients are added, what
exists is left as it is.

Errors: ``AdminError`` (an ``AdapterError``) with a message for people: Keycloak unreachable,
credentials refused, unknown realm, role or client, an agreement file refused (the
``PolicyError`` message). python-keycloak's exceptions are translated here and chained; no
message holds a password or a secret.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
from collections.abc import Iterator, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakConnectionError, KeycloakError

from adapter import resources
from adapter.access.odrl import Catalogue, PolicyError, parse_agreement
from adapter.access.policies import check_file
from adapter.exceptions import AdapterError

__all__ = [
    "REALM_TEMPLATE",
    "ROLES",
    "AdminError",
    "AdminResult",
    "IdentityAdmin",
    "realm_representation",
    "revoke_agreement_file",
]

#: The shipped realm new collectivities are shaped like.
REALM_TEMPLATE = resources.realm_template()
#: The realm roles of every collectivity (those of ``REALM_TEMPLATE``).
ROLES = ("building-manager", "elected-official", "researcher", "data-admin", "partner-platform")

_NGSILD_SCOPE = "ngsild"
#: The default scopes of a partner client, as ``ecole-ventilation``'s in the shipped realm
#: (those the realm lacks are skipped; ``ngsild`` is required).
_PARTNER_SCOPES = ("basic", "acr", _NGSILD_SCOPE, "service_account")
_ADMIN_REALM = "master"
# A realm name that is also a tenant of the agreements' IRIs (urn:ngsild-adapter:client:{tenant}:{id}).
_TENANT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_CAPITAL_PLACEHOLDER = re.compile(r"\$\{[A-Z][A-Z0-9_]*(?::[^}]*)?\}")
# The top-level keys of the template a new realm takes; the rest (users, identity providers,
# their mappers, authentication flows) belongs to the city alone.
_REALM_KEYS = (
    "sslRequired",
    "registrationAllowed",
    "loginWithEmailAllowed",
    "duplicateEmailsAllowed",
    "resetPasswordAllowed",
    "editUsernameAllowed",
    "bruteForceProtected",
    "accessTokenLifespan",
    "roles",
    "groups",
    "clientScopes",
    "defaultDefaultClientScopes",
    "defaultOptionalClientScopes",
    "clients",
)


class AdminError(AdapterError):
    """An administration operation failed; the message says why and what to do (never a secret)."""


@dataclass(frozen=True, slots=True)
class AdminResult:
    """What an operation did.

    ``action`` is ``"created"``, ``"updated"`` (something was added to what existed),
    ``"unchanged"`` (everything was already there: nothing changed) or ``"removed"``.
    ``subject`` names what it is about (``realm metropole``, ``client metropole/x``,
    ``user metropole/x``, ``agreement urn:...``); ``message`` says it in one line; ``created``
    and ``existing`` list the parts this call made and those it found. ``secret`` is a new
    partner's client secret, given once (hidden from ``repr``); ``description`` an agreement in
    plain words; ``path`` the agreement file written or removed.
    """

    action: Literal["created", "updated", "unchanged", "removed"]
    subject: str
    message: str
    created: tuple[str, ...] = ()
    existing: tuple[str, ...] = ()
    secret: str | None = field(default=None, repr=False)
    description: tuple[str, ...] = ()
    path: Path | None = None

    @property
    def changed(self) -> bool:
        return self.action != "unchanged"

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with the secret, when there is one: print it once, log it never)."""
        data: dict[str, Any] = {
            "action": self.action,
            "subject": self.subject,
            "message": self.message,
            "created": list(self.created),
            "existing": list(self.existing),
        }
        if self.secret is not None:
            data["secret"] = self.secret
        if self.description:
            data["description"] = list(self.description)
        if self.path is not None:
            data["path"] = str(self.path)
        return data


def realm_representation(
    tenant: str, name: str, *, template: Path = REALM_TEMPLATE, password_grant: bool = False
) -> dict[str, Any]:
    """The Keycloak realm representation of a new collectivity, made from a shipped realm file.

    Kept from ``template``: the realm settings, roles, groups, client scopes (with the ``ngsild``
    scope's hard-coded ``organization`` claim set to ``tenant``), default client scopes and the
    clients without a secret (the bearer-only ``ngsild-gateway``, the public ``cli``). Left out:
    users, confidential clients (partners, brokers), identity providers and authentication
    flows. ``cli`` gets the password grant only with ``password_grant=True`` (scripted tests;
    production keeps it off, as ``compose/keycloak/README.md`` says).
    """
    _check_tenant(tenant)
    try:
        source = json.loads(template.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdminError(f"cannot read the realm template {template}: {exc}") from exc
    realm: dict[str, Any] = {key: copy.deepcopy(source[key]) for key in _REALM_KEYS if key in source}
    realm["realm"] = tenant
    realm["displayName"] = name or tenant
    realm["enabled"] = True
    realm["attributes"] = {
        "_comment": f"Realm of the collectivity {tenant}, provisioned by ngsild-adapter from {template.name}."
    }
    realm["clients"] = [client for client in realm.get("clients", []) if "secret" not in client]
    for client in realm["clients"]:
        if client.get("publicClient") and client.get("directAccessGrantsEnabled"):
            client["directAccessGrantsEnabled"] = password_grant
            if not password_grant:
                client["description"] = (
                    "Public client of command-line tools: code flow with PKCE on loopback redirect URIs."
                )
    scope = next((s for s in realm.get("clientScopes", []) if s.get("name") == _NGSILD_SCOPE), None)
    mapper = None if scope is None else _organization_mapper(scope.get("protocolMappers", []))
    if mapper is None:
        raise AdminError(f"the realm template {template} has no {_NGSILD_SCOPE} scope with an organization mapper")
    mapper["config"]["claim.value"] = tenant
    leftover = _CAPITAL_PLACEHOLDER.search(json.dumps(realm))
    if leftover:
        # A ${VARIABLE} left in what a realm takes would reach Keycloak verbatim.
        raise AdminError(f"the realm template {template} holds the placeholder {leftover.group(0)} in a kept part")
    return realm


class IdentityAdmin:
    """The identity administrators' operations on one Keycloak, each idempotent.

    Parameters: ``server_url``, Keycloak's base URL (``https://auth.example.org``);
    ``username`` and ``password``, an administrator of the ``master`` realm; ``verify``, check
    the server's TLS certificate (``False`` or a CA bundle path for test servers);
    ``realm_template``, the shipped realm new collectivities are shaped like. Nothing is
    requested before the first operation; ``close()`` (or ``with``) releases the connections::

        with IdentityAdmin(url, "admin", password) as admin:
            result = admin.register_partner("metropole", "ecoles-ventilation")
            print(result.message)
    """

    def __init__(
        self,
        server_url: str,
        username: str,
        password: str,
        *,
        verify: bool | str = True,
        realm_template: Path = REALM_TEMPLATE,
        timeout: int = 30,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.username = username
        self.realm_template = realm_template
        self._keycloak = KeycloakAdmin(
            server_url=self.server_url,
            username=username,
            password=password,
            realm_name=_ADMIN_REALM,
            user_realm_name=_ADMIN_REALM,  # the administrators' realm, whatever realm is administered
            verify=verify,
            timeout=timeout,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP sessions (python-keycloak otherwise closes them when collected)."""
        # python-keycloak 7 has no public close for its sync sessions: its connection managers
        # keep a requests.Session in ``_s`` (the token client's is made at the first login).
        connection = self._keycloak.connection
        openid = getattr(connection, "_keycloak_openid", None)
        for manager in (connection, None if openid is None else openid.connection):
            session = getattr(manager, "_s", None)
            if session is not None:
                session.close()

    # -- collectivities ------------------------------------------------------------------------

    def provision_collectivity(self, tenant: str, name: str, *, password_grant: bool = False) -> AdminResult:
        """The realm ``tenant`` of a collectivity, shaped like the shipped ones (``realm_representation``).

        A new realm is created in one request. An existing one is completed: the roles, groups
        (with their roles), client scopes, ``ngsild`` mappers, default client scope ``ngsild``
        and clients it lacks are added; nothing that exists is changed. An existing ``ngsild``
        scope naming another organization is an error (fix it by hand: it says who tokens
        speak for). ``password_grant``: see ``realm_representation`` (new ``cli`` clients only).
        """
        wanted = realm_representation(tenant, name, template=self.realm_template, password_grant=password_grant)
        subject = f"realm {tenant}"
        created: list[str] = []
        existing: list[str] = []
        with self._translate(f"provision the realm {tenant}"):
            if not self._realm_exists(tenant):
                self._keycloak.create_realm(wanted)
                return AdminResult(
                    "created",
                    subject,
                    f"realm {tenant} ({wanted['displayName']}) created",
                    created=tuple(_parts(wanted)),
                )
            self._keycloak.change_current_realm(tenant)
            self._complete_roles(wanted, created, existing)
            self._complete_groups(wanted, created, existing)
            self._complete_scopes(tenant, wanted, created, existing)
            self._complete_clients(wanted, created, existing)
        if not created:
            return AdminResult(
                "unchanged", subject, f"realm {tenant} already provisioned: nothing changed", existing=tuple(existing)
            )
        return AdminResult(
            "updated",
            subject,
            f"realm {tenant} existed: added {', '.join(created)}",
            created=tuple(created),
            existing=tuple(existing),
        )

    def _complete_roles(self, wanted: dict[str, Any], created: list[str], existing: list[str]) -> None:
        have = {role["name"] for role in self._keycloak.get_realm_roles()}
        for role in wanted["roles"]["realm"]:
            if role["name"] in have:
                existing.append(f"role {role['name']}")
            else:
                self._keycloak.create_realm_role({"name": role["name"], "description": role.get("description", "")})
                created.append(f"role {role['name']}")

    def _complete_groups(self, wanted: dict[str, Any], created: list[str], existing: list[str]) -> None:
        have = {group["name"]: group["id"] for group in self._keycloak.get_groups()}
        for group in wanted.get("groups", []):
            group_id = have.get(group["name"])
            if group_id is None:
                payload = {"name": group["name"], "attributes": group.get("attributes", {})}
                group_id = str(self._keycloak.create_group(payload))
                created.append(f"group {group['name']}")
            else:
                existing.append(f"group {group['name']}")
            mapped = {role["name"] for role in self._keycloak.get_group_realm_roles(group_id)}
            missing = [name for name in group.get("realmRoles", []) if name not in mapped]
            if missing:
                self._keycloak.assign_group_realm_roles(group_id, [self._keycloak.get_realm_role(n) for n in missing])
                created.extend(f"role {name} of group {group['name']}" for name in missing)

    def _complete_scopes(self, tenant: str, wanted: dict[str, Any], created: list[str], existing: list[str]) -> None:
        have = {scope["name"]: scope for scope in self._keycloak.get_client_scopes()}
        for scope in wanted.get("clientScopes", []):
            found = have.get(scope["name"])
            if found is None:
                self._keycloak.create_client_scope(scope)
                created.append(f"client scope {scope['name']}")
                continue
            existing.append(f"client scope {scope['name']}")
            if scope["name"] != _NGSILD_SCOPE:
                continue  # the realm's own business: only ngsild must say what the gateway reads
            mappers = {m["name"]: m for m in found.get("protocolMappers", [])}
            organization = _organization_mapper(list(mappers.values()))
            if organization is not None and organization.get("config", {}).get("claim.value") != tenant:
                raise AdminError(
                    f"realm {tenant}: its {_NGSILD_SCOPE} scope puts organization "
                    f"{organization.get('config', {}).get('claim.value')!r} in tokens, not {tenant!r}: "
                    "fix the mapper by hand (it says which collectivity the realm's tokens speak for)"
                )
            for mapper in scope.get("protocolMappers", []):
                if mapper["name"] in mappers:
                    existing.append(f"mapper {scope['name']}/{mapper['name']}")
                else:
                    self._keycloak.add_mapper_to_client_scope(found["id"], mapper)
                    created.append(f"mapper {scope['name']}/{mapper['name']}")
        defaults = {scope["name"] for scope in self._keycloak.get_default_default_client_scopes()}
        if _NGSILD_SCOPE in defaults:
            existing.append(f"default client scope {_NGSILD_SCOPE}")
        else:
            scope_id = self._scope_id(_NGSILD_SCOPE)
            self._keycloak.add_default_default_client_scope(scope_id)
            created.append(f"default client scope {_NGSILD_SCOPE}")

    def _complete_clients(self, wanted: dict[str, Any], created: list[str], existing: list[str]) -> None:
        have = {client["clientId"] for client in self._keycloak.get_clients()}
        for client in wanted.get("clients", []):
            if client["clientId"] in have:
                existing.append(f"client {client['clientId']}")
            else:
                self._keycloak.create_client(client)
                created.append(f"client {client['clientId']}")

    # -- partners and users --------------------------------------------------------------------

    def register_partner(
        self,
        tenant: str,
        client_id: str,
        *,
        roles: Sequence[str] = ("partner-platform",),
        description: str = "",
    ) -> AdminResult:
        """A partner platform: a confidential client of realm ``tenant`` with client credentials only.

        The client has a service account holding ``roles`` (realm roles), no standard flow, no
        direct grants, and the ``ngsild`` scope by default, so its tokens carry
        ``organization``, ``roles`` and the gateway as audience. Keycloak generates the secret;
        the result gives it once (``result.secret``). A second call does not rotate it: the
        client is "already registered" (``secret`` None); roles it lacks are added, none is taken
        away. A client of that id that is not confidential with a service account is an error.
        """
        _check_tenant(tenant)
        if not client_id or any(c.isspace() for c in client_id):
            raise AdminError(f"client id {client_id!r}: a non-empty id without spaces is expected")
        subject = f"client {tenant}/{client_id}"
        with self._translate(f"register the partner {client_id} in realm {tenant}"):
            self._use_realm(tenant)
            role_reps = self._realm_roles(tenant, roles)
            scopes = {scope["name"]: scope["id"] for scope in self._keycloak.get_client_scopes()}
            if _NGSILD_SCOPE not in scopes:
                raise AdminError(
                    f"realm {tenant} has no {_NGSILD_SCOPE} client scope: provision the collectivity first"
                )
            uuid = self._keycloak.get_client_id(client_id)
            created: list[str] = []
            existing: list[str] = []
            if uuid is None:
                self._keycloak.create_client(_partner_client(client_id, description, set(scopes)))
                uuid = self._keycloak.get_client_id(client_id)
                if uuid is None:
                    raise AdminError(f"realm {tenant}: the client {client_id} was not found after its creation")
                created.append(f"client {client_id}")
                new = True
            else:
                client = self._keycloak.get_client(uuid)
                if client.get("publicClient") or client.get("bearerOnly") or not client.get("serviceAccountsEnabled"):
                    raise AdminError(
                        f"realm {tenant} already has a client {client_id} that is not a confidential client with a "
                        "service account: choose another id, or fix or delete that client in Keycloak"
                    )
                existing.append(f"client {client_id}")
                new = False
            default_scopes = {scope["name"] for scope in self._keycloak.get_client_default_client_scopes(uuid)}
            if _NGSILD_SCOPE in default_scopes:
                existing.append(f"default client scope {_NGSILD_SCOPE}")
            else:
                scope_id = scopes[_NGSILD_SCOPE]
                payload = {"realm": tenant, "client": uuid, "clientScopeId": scope_id}
                self._keycloak.add_client_default_client_scope(uuid, scope_id, payload)
                created.append(f"default client scope {_NGSILD_SCOPE}")
            account = self._keycloak.get_client_service_account_user(uuid)
            held = {role["name"] for role in self._keycloak.get_realm_roles_of_user(account["id"])}
            missing = [role for role in role_reps if role["name"] not in held]
            if missing:
                self._keycloak.assign_realm_roles(account["id"], missing)
            created.extend(f"role {role['name']}" for role in missing)
            existing.extend(f"role {role['name']}" for role in role_reps if role["name"] in held)
            secret = self._keycloak.get_client_secrets(uuid).get("value") if new else None
        if new:
            if not secret:
                raise AdminError(f"realm {tenant}: Keycloak generated no secret for the client {client_id}")
            return AdminResult(
                "created",
                subject,
                f"partner {client_id} registered in realm {tenant} "
                f"(roles {', '.join(r['name'] for r in role_reps)}): give it its secret now, it is not shown again",
                created=tuple(created),
                existing=tuple(existing),
                secret=secret,
            )
        if created:
            return AdminResult(
                "updated",
                subject,
                f"partner {client_id} already registered in realm {tenant}: added "
                f"{', '.join(created)} (secret unchanged)",
                created=tuple(created),
                existing=tuple(existing),
            )
        return AdminResult(
            "unchanged",
            subject,
            f"partner {client_id} already registered in realm {tenant}: nothing changed "
            "(secret unchanged; a lost secret is regenerated in Keycloak's console)",
            existing=tuple(existing),
        )

    def add_user(
        self,
        tenant: str,
        username: str,
        *,
        role: str,
        email: str | None = None,
        temporary_password: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> AdminResult:
        """A user of realm ``tenant``, enabled, holding the realm role ``role``.

        With ``temporary_password``, the user must choose a new password at the first login
        (required action ``UPDATE_PASSWORD``). An existing user (Keycloak's usernames are lower
        case) keeps their password, email, names and state; only a missing ``role`` is added.
        """
        _check_tenant(tenant)
        username = username.strip().lower()
        if not username or any(c.isspace() for c in username):
            raise AdminError(f"username {username!r}: a non-empty name without spaces is expected")
        subject = f"user {tenant}/{username}"
        with self._translate(f"add the user {username} to realm {tenant}"):
            self._use_realm(tenant)
            (role_rep,) = self._realm_roles(tenant, [role])
            user_id = self._keycloak.get_user_id(username)
            if user_id is None:
                payload: dict[str, Any] = {"username": username, "enabled": True}
                if email:
                    payload.update(email=email, emailVerified=False)
                if first_name:
                    payload["firstName"] = first_name
                if last_name:
                    payload["lastName"] = last_name
                if temporary_password:
                    payload["credentials"] = [{"type": "password", "value": temporary_password, "temporary": True}]
                    payload["requiredActions"] = ["UPDATE_PASSWORD"]
                user_id = self._keycloak.create_user(payload)
                self._keycloak.assign_realm_roles(user_id, [role_rep])
                password = " with a temporary password (to change at first login)" if temporary_password else ""
                return AdminResult(
                    "created",
                    subject,
                    f"user {username} created in realm {tenant} with role {role}{password}",
                    created=(f"user {username}", f"role {role}"),
                )
            user = self._keycloak.get_user(user_id)
            held = {r["name"] for r in self._keycloak.get_realm_roles_of_user(user_id)}
            notes = [] if user.get("enabled", True) else ["the user is disabled"]
            if temporary_password:
                notes.append("password not changed")
            suffix = f" ({'; '.join(notes)})" if notes else ""
            if role in held:
                return AdminResult(
                    "unchanged",
                    subject,
                    f"user {username} already exists in realm {tenant} with role {role}: nothing changed{suffix}",
                    existing=(f"user {username}", f"role {role}"),
                )
            self._keycloak.assign_realm_roles(user_id, [role_rep])
            return AdminResult(
                "updated",
                subject,
                f"user {username} already exists in realm {tenant}: role {role} added{suffix}",
                created=(f"role {role}",),
                existing=(f"user {username}",),
            )

    # -- sharing agreements --------------------------------------------------------------------

    def grant_agreement(
        self, agreement_file: Path, policies_dir: Path, *, tenants: Set[str], catalogue: Catalogue
    ) -> AdminResult:
        """Put a sharing agreement in force: check it, check its assignees exist in Keycloak,
        copy it into the gateway's agreements folder ``policies_dir`` under its file name.

        The file is checked as the gateway would load it (``check_file`` against ``tenants`` and
        ``catalogue``; a refusal is an ``AdminError`` with the ``PolicyError`` message). Then each
        assignee must be known: ``urn:ngsild-adapter:client:{tenant}:{clientId}`` a client of
        realm ``tenant``, ``urn:ngsild-adapter:role:{tenant}:{role}`` a realm role of it,
        ``urn:ngsild-adapter:organization:{tenant}`` the realm. Another file of the folder with
        the same uid is refused (the gateway would refuse the folder). The same content already
        there is "unchanged"; another content under that name is replaced ("updated").
        ``result.description`` says what the agreement grants, in plain words.

        A running gateway re-reads its agreements folder (every few seconds) for the
        agreement to take effect.
        """
        try:
            description = check_file(agreement_file, tenants, catalogue)
            agreement = parse_agreement(agreement_file, tenants=tenants, catalogue=catalogue)
        except PolicyError as exc:
            raise AdminError(f"agreement refused: {exc}") from exc
        if not policies_dir.is_dir():
            raise AdminError(f"the agreements folder {policies_dir} does not exist (the gateway's [gateway] policies)")
        for party in agreement.assignees:
            self._check_party(agreement_file, party.iri, party.kind, party.tenant, party.name)
        target = policies_dir / agreement_file.name
        for other in sorted(policies_dir.glob("*.jsonld")):
            if other.name != target.name and _uid_of(other) == agreement.uid:
                raise AdminError(
                    f"agreement {agreement.uid} is already in force as {other}: revoke it first, or grant the "
                    f"new version under the same file name ({other.name})"
                )
        content = agreement_file.read_bytes()
        subject = f"agreement {agreement.uid}"
        if target.is_file() and target.read_bytes() == content:
            return AdminResult(
                "unchanged",
                subject,
                f"agreement {agreement.uid} already granted as {target}: nothing changed",
                existing=(str(target),),
                description=tuple(description),
                path=target,
            )
        replaced = target.exists()
        _write_atomically(target, content)
        restart = "the gateway applies it within seconds (it re-reads its folder)"
        if replaced:
            return AdminResult(
                "updated",
                subject,
                f"agreement {agreement.uid} replaced in {target}: {restart}",
                created=(str(target),),
                description=tuple(description),
                path=target,
            )
        return AdminResult(
            "created",
            subject,
            f"agreement {agreement.uid} granted as {target}: {restart}",
            created=(str(target),),
            description=tuple(description),
            path=target,
        )

    def revoke_agreement(self, uid_or_file_name: str, policies_dir: Path) -> AdminResult:
        """``revoke_agreement_file`` (it needs no Keycloak)."""
        return revoke_agreement_file(uid_or_file_name, policies_dir)

    def _check_party(self, file: Path, iri: str, kind: str, tenant: str, name: str | None) -> None:
        with self._translate(f"check the assignee {iri}"):
            if not self._realm_exists(tenant):
                raise AdminError(f"{file}: assignee {iri}: Keycloak has no realm {tenant}: provision it first")
            self._keycloak.change_current_realm(tenant)
            if kind == "client" and name is not None and self._keycloak.get_client_id(name) is None:
                raise AdminError(
                    f"{file}: assignee {iri}: realm {tenant} has no client {name}: register the partner first"
                )
            if kind == "role" and name is not None and name not in self._role_names():
                raise AdminError(
                    f"{file}: assignee {iri}: realm {tenant} has no role {name} "
                    f"(roles: {', '.join(sorted(self._role_names()))})"
                )

    # -- Keycloak --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """python-keycloak's errors as ``AdminError``: what failed and why, never a secret."""
        try:
            self._login()
            yield
        except KeycloakConnectionError as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else "no answer"
            raise AdminError(f"Keycloak is unreachable at {self.server_url} ({cause}): could not {what}") from exc
        except KeycloakAuthenticationError as exc:
            raise AdminError(
                f"Keycloak refused the credentials of the administrator {self.username!r} (realm {_ADMIN_REALM}) "
                f"at {self.server_url}: could not {what}"
            ) from exc
        except KeycloakError as exc:
            code = exc.response_code
            if code == 403:
                raise AdminError(
                    f"the account {self.username!r} is not allowed to {what} (it needs the admin role of "
                    f"realm {_ADMIN_REALM})"
                ) from exc
            status = f"HTTP {code}" if code is not None else "error"
            raise AdminError(f"Keycloak could not {what}: {status}{_problem(exc)}") from exc

    def _login(self) -> None:
        connection = self._keycloak.connection
        if connection.token is not None:
            return  # python-keycloak refreshes it, or logs in again, when it expires
        try:
            connection.get_token()
        except KeycloakConnectionError:
            raise
        except KeycloakError as exc:
            # The token endpoint answers 400 invalid_grant (bad password) or 401 (unknown client).
            if exc.response_code in (400, 401):
                raise KeycloakAuthenticationError(response_code=exc.response_code) from exc
            raise

    def _realm_exists(self, tenant: str) -> bool:
        try:
            self._keycloak.get_realm(tenant)
        except KeycloakError as exc:
            if exc.response_code == 404:
                return False
            raise
        return True

    def _use_realm(self, tenant: str) -> None:
        if not self._realm_exists(tenant):
            raise AdminError(f"Keycloak has no realm {tenant}: provision the collectivity first")
        self._keycloak.change_current_realm(tenant)

    def _role_names(self) -> set[str]:
        return {role["name"] for role in self._keycloak.get_realm_roles()}

    def _realm_roles(self, tenant: str, names: Sequence[str]) -> list[dict[str, Any]]:
        if isinstance(names, str):
            names = [names]
        if not names:
            raise AdminError("at least one role is needed")
        have = {role["name"]: role for role in self._keycloak.get_realm_roles()}
        unknown = [name for name in names if name not in have]
        if unknown:
            raise AdminError(f"realm {tenant} has no role {', '.join(unknown)} (roles: {', '.join(sorted(have))})")
        return [have[name] for name in dict.fromkeys(names)]

    def _scope_id(self, name: str) -> str:
        for scope in self._keycloak.get_client_scopes():
            if scope["name"] == name:
                scope_id: str = scope["id"]
                return scope_id
        raise AdminError(f"no client scope {name}")


def _check_tenant(tenant: str) -> None:
    if tenant == _ADMIN_REALM:
        raise AdminError(f"{_ADMIN_REALM} is Keycloak's administration realm, not a collectivity")
    if not _TENANT.fullmatch(tenant):
        raise AdminError(
            f"tenant {tenant!r}: lower-case letters, digits, '-' and '_' expected (it names the realm and the "
            "collectivity in tokens and agreements)"
        )


def _organization_mapper(mappers: list[dict[str, Any]]) -> dict[str, Any] | None:
    for mapper in mappers:
        config = mapper.get("config", {})
        if mapper.get("protocolMapper") == "oidc-hardcoded-claim-mapper" and config.get("claim.name") == "organization":
            return mapper
    return None


def _parts(realm: dict[str, Any]) -> list[str]:
    parts = [f"realm {realm['realm']}"]
    parts += [f"role {role['name']}" for role in realm.get("roles", {}).get("realm", [])]
    parts += [f"group {group['name']}" for group in realm.get("groups", [])]
    parts += [f"client scope {scope['name']}" for scope in realm.get("clientScopes", [])]
    parts += [f"default client scope {name}" for name in realm.get("defaultDefaultClientScopes", [])]
    parts += [f"client {client['clientId']}" for client in realm.get("clients", [])]
    return parts


def _partner_client(client_id: str, description: str, scopes: Set[str]) -> dict[str, Any]:
    """A partner platform's client, as ``ecole-ventilation`` in the shipped realm (no secret:
    Keycloak generates one)."""
    return {
        "clientId": client_id,
        "name": client_id,
        "description": description or f"Partner platform {client_id} (client credentials).",
        "enabled": True,
        "publicClient": False,
        "bearerOnly": False,
        "clientAuthenticatorType": "client-secret",
        "standardFlowEnabled": False,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": True,
        "protocol": "openid-connect",
        "attributes": {"oauth2.device.authorization.grant.enabled": "false", "oidc.ciba.grant.enabled": "false"},
        "defaultClientScopes": [name for name in _PARTNER_SCOPES if name in scopes],
        "optionalClientScopes": [],
    }


def _problem(exc: KeycloakError) -> str:
    """Keycloak's own explanation of a refusal (its error fields only: never the request)."""
    try:
        body = json.loads(exc.response_body or b"")
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    text = str(body.get("errorMessage") or body.get("error_description") or body.get("error") or "")
    if not text:
        return ""
    if isinstance(body.get("field"), str):
        text = f"{body['field']}: {text}"
    params = body.get("params")
    if isinstance(params, list) and params:
        # validation limits ("username", 3, 255), never the refused value itself
        text += f" ({', '.join(str(p) for p in params if not isinstance(p, dict | list))})"
    return f": {text[:300]}"


def _uid_of(path: Path) -> str | None:
    """The uid of an agreement file as written (``uid`` or ``@id``), without checking it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    for key in ("uid", "@id", "odrl:uid"):
        value = document.get(key)
        if isinstance(value, str):
            return value
    return None


def _find_agreement(uid_or_file_name: str, folder: Path) -> Path | None:
    name = uid_or_file_name
    if "/" not in name and os.sep not in name and name not in ("", ".", ".."):
        for candidate in (name, f"{name}.jsonld"):
            path = folder / candidate
            if candidate.endswith(".jsonld") and path.is_file():
                return path
    for path in sorted(folder.glob("*.jsonld")):
        if _uid_of(path) == uid_or_file_name:
            return path
    return None


def _write_atomically(target: Path, content: bytes) -> None:
    # The gateway loads *.jsonld: a half-written agreement must never be one of them.
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise AdminError(f"cannot write {target}: {exc.strerror or exc}") from exc


def revoke_agreement_file(uid_or_file_name: str, policies_dir: Path) -> AdminResult:
    """Take an agreement out of the gateway's folder: by its uid, or by its file name (with
    or without ``.jsonld``). None there is "unchanged" (already revoked, or a typo: the
    message says which folder was searched). Needs no Keycloak.

    A running gateway re-reads its agreements folder (every few seconds) for
    the revocation to take effect.
    """
    if not policies_dir.is_dir():
        raise AdminError(f"the agreements folder {policies_dir} does not exist (the gateway's [gateway] policies)")
    found = _find_agreement(uid_or_file_name, policies_dir)
    subject = f"agreement {uid_or_file_name}"
    if found is None:
        return AdminResult(
            "unchanged",
            subject,
            f"no agreement {uid_or_file_name} in {policies_dir} (already revoked?): nothing changed",
        )
    uid = _uid_of(found) or uid_or_file_name
    try:
        found.unlink()
    except OSError as exc:
        raise AdminError(f"cannot remove {found}: {exc.strerror or exc}") from exc
    return AdminResult(
        "removed",
        f"agreement {uid}",
        f"agreement {uid} revoked ({found} removed): the gateway applies it within seconds",
        path=found,
    )
