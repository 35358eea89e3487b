"""@context handling: each distinct context is processed once into term maps, then names are
expanded and compacted by dictionary lookups.

Running a JSON-LD processor (pyld) over every entity costs milliseconds; a batch of 1,000
entities would spend seconds in it. What the broker needs from JSON-LD is only the mapping
of attribute names and entity types to IRIs, so each context (keyed by its JSON) is walked
once into a term→IRI map, with the inverse map built for compaction. The rules follow
Orion-LD (see the reference note, section 4):

- the NGSI-LD core context always applies and its terms win over user terms (it is
  ``@protected``); any version of the core context URL means the local core copy;
- a name found nowhere expands with ``@vocab`` (a user one if given, else the core one,
  ``https://uri.etsi.org/ngsi-ld/default-context/``); ``prefix:suffix`` expands through the
  prefix term; absolute IRIs stay as they are;
- compaction uses the request's context only: a term for the IRI, else the default-context
  tail (always short), else a ``prefix:suffix`` form, else the full IRI;
- ``@container`` ``@list`` and ``@set`` on the term naming an attribute (or sub-attribute)
  act as in a JSON-LD processor (pyld): ``@list`` wraps the attribute node in a list when it
  is expanded, and compaction picks a term by the attribute's list-ness (a listed attribute
  prefers a ``@list`` term and is ``{"@list": [...]}`` under any other name; an unlisted one
  prefers a ``@set`` term, which writes it as a one-element array, and never takes a
  ``@list`` term). Other containers and type coercion are ignored (values stay as sent).

Remote contexts come from the project's local copies first (``adapter.ngsild.contexts``), then
over HTTP (5 s timeout). Downloads are cached; a failure is ``LdContextNotAvailable`` (503).
An offline broker (``HttpContextLoader(reachable=...)``) stands for an Orion-LD inside a
network without internet: no local copies, and only URLs under the reachable prefixes are
downloaded; any other is 503 LdContextNotAvailable with the URL, as Orion-LD answers when
its download fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp

from adapter.ngsild.broker.errors import BadRequestData, LdContextNotAvailable
from adapter.ngsild.contexts import CORE_CONTEXT, context_files, load_context

__all__ = [
    "CORE_URL",
    "DEFAULT_VOCAB",
    "LIST",
    "SET",
    "ContextResolver",
    "DocumentLoader",
    "HttpContextLoader",
    "TermContext",
    "is_core_url",
    "link_header",
]

CORE_URL = CORE_CONTEXT
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
FETCH_TIMEOUT_S = 5.0
_MAX_NESTING = 8
_CORE_URL = re.compile(r"https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(?:-v\d+\.\d+)?\.jsonld\Z")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+\Z")
_GEN_DELIMS = (":", "/", "?", "#", "[", "]", "@")
#: The containers honoured on attribute terms (``_OTHER``: any other, never chosen for one).
LIST = "@list"
SET = "@set"
_OTHER = "@other"

#: Fetches a context document by URL and returns it parsed (a dict with ``@context``).
DocumentLoader = Callable[[str], Awaitable[Any]]


def is_core_url(url: str) -> bool:
    return url == CORE_URL or _CORE_URL.match(url) is not None


def link_header(url: str) -> str:
    """The ``Link`` header value naming a JSON-LD context."""
    return f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


class _TermMap:
    """The term definitions of one context (a list of context objects), IRIs resolved."""

    def __init__(self, definitions: list[Mapping[str, Any]]) -> None:
        raw: dict[str, Any] = {}
        self.vocab: str | None = None
        for definition in definitions:
            for term, value in definition.items():
                if term == "@vocab":
                    self.vocab = value if isinstance(value, str) and value else None
                elif not term.startswith("@"):
                    raw[term] = value
        self._raw = raw
        self.terms: dict[str, str] = {}
        self.prefixes: dict[str, str] = {}
        #: term -> LIST / SET / _OTHER, for terms declaring a container
        self.containers: dict[str, str] = {}
        #: terms coercing to ``@id`` (preferred by a processor for node objects)
        self.id_typed: set[str] = set()
        for term in raw:
            iri = self._resolve(term, set())
            if iri is not None:
                self.terms[term] = iri
                value = raw[term]
                if isinstance(value, Mapping):
                    container = _container(value.get("@container"))
                    if container is not None:
                        self.containers[term] = container
                    if value.get("@type") == "@id":
                        self.id_typed.add(term)
                if isinstance(value, str) and iri.endswith(_GEN_DELIMS):
                    self.prefixes[term] = iri
                elif isinstance(value, Mapping) and value.get("@prefix") is True:
                    self.prefixes[term] = iri

    def _resolve(self, term: str, seen: set[str]) -> str | None:
        if term in seen:
            return None
        seen.add(term)
        value = self._raw.get(term)
        if isinstance(value, Mapping):
            target = value.get("@id", term if "@reverse" not in value else None)
        else:
            target = value
        if not isinstance(target, str) or target.startswith("@"):
            return None
        return self._iri(target, seen)

    def _iri(self, value: str, seen: set[str]) -> str | None:
        if ":" in value:
            prefix, suffix = value.split(":", 1)
            if suffix.startswith("//") or prefix not in self._raw:
                return value
            base = self._resolve(prefix, seen)
            return None if base is None else base + suffix
        if value in self._raw and value not in seen:
            return self._resolve(value, seen)
        return (self.vocab or DEFAULT_VOCAB) + value


class TermContext:
    """The active context of one request: ``expand`` and ``compact`` names and types.

    ``value`` is the user context as given (``None`` when only the core context applies);
    ``link`` is the URL a ``Link`` header can carry for it, when there is one.
    """

    def __init__(self, value: Any, user: _TermMap | None, core: _TermMap) -> None:
        self.value = value
        self._user = user
        self._core = core
        self._expanded: dict[str, str] = {}
        self._compacted: dict[str, str] = {}
        self._inverse: dict[str, str] | None = None
        self._members: dict[tuple[str, bool], tuple[str, str | None]] = {}
        self._selection: dict[str, dict[tuple[str, str], str]] | None = None

    @property
    def link(self) -> str:
        if self.value is None:
            return CORE_URL
        if isinstance(self.value, str):
            return self.value
        return ""

    def body_context(self) -> Any:
        """The ``@context`` member of an ``application/ld+json`` answer."""
        if self.value is None:
            return CORE_URL
        items = self.value if isinstance(self.value, list) else [self.value]
        if any(isinstance(item, str) and is_core_url(item) for item in items):
            return self.value
        return [*items, CORE_URL]

    def expand(self, name: str) -> str:
        found = self._expanded.get(name)
        if found is not None:
            return found
        iri = self._core.terms.get(name)
        user = self._user
        if iri is None and user is not None:
            iri = user.terms.get(name)
        if iri is None:
            if ":" in name:
                prefix, suffix = name.split(":", 1)
                base = self._core.terms.get(prefix) or (user.terms.get(prefix) if user else None)
                iri = base + suffix if base is not None and not suffix.startswith("//") else name
            else:
                iri = ((user.vocab if user else None) or DEFAULT_VOCAB) + name
        self._expanded[name] = iri
        return iri

    def container(self, name: str) -> str | None:
        """The container (``LIST``, ``SET``, other, or ``None``) of the term ``expand(name)`` used."""
        if name in self._core.terms:
            return self._core.containers.get(name)
        user = self._user
        if user is not None and name in user.terms:
            return user.containers.get(name)
        return None

    def compact_attribute(self, iri: str, *, listed: bool = False) -> tuple[str, str | None]:
        """The key of an attribute node in an answer and the container of the term chosen.

        A processor selects the term by the value's shape (JSON-LD 1.1 IRI compaction):
        a listed node takes a ``@list`` term, else a term without container; an unlisted
        node a ``@set`` term, else one without container; among equals a term coercing to
        ``@id`` first, then the shortest. No term: the same fallbacks as ``compact``, but never
        a string that is itself a term of the context (it would read back as that term).
        """
        key = (iri, listed)
        found = self._members.get(key)
        if found is not None:
            return found
        chosen: tuple[str, str | None] | None = None
        candidates = self._selection_map().get(iri, {})
        for container in (LIST, "") if listed else (SET, ""):
            for preference in ("@id", ""):
                term = candidates.get((container, preference))
                if term is not None:
                    chosen = (term, container or None)
                    break
            if chosen is not None:
                break
        if chosen is None:
            chosen = (self._shorten(iri, avoid_terms=True), None)
        self._members[key] = chosen
        return chosen

    def compact(self, iri: str) -> str:
        found = self._compacted.get(iri)
        if found is not None:
            return found
        term = self._inverse_map().get(iri)
        if term is None:
            term = self._shorten(iri)
        self._compacted[iri] = term
        return term

    def _is_term(self, name: str) -> bool:
        return name in self._core.terms or (self._user is not None and name in self._user.terms)

    def _shorten(self, iri: str, *, avoid_terms: bool = False) -> str:
        if iri.startswith(DEFAULT_VOCAB) and len(iri) > len(DEFAULT_VOCAB):
            tail = iri[len(DEFAULT_VOCAB) :]
            if not (avoid_terms and self._is_term(tail)):
                return tail
        user = self._user
        if user is not None and user.vocab and iri.startswith(user.vocab) and len(iri) > len(user.vocab):
            tail = iri[len(user.vocab) :]
            if tail not in user.terms and tail not in self._core.terms:
                return tail
        best = ""
        for source in (self._core, user):
            if source is None:
                continue
            for prefix, base in source.prefixes.items():
                if iri.startswith(base) and len(iri) > len(base):
                    curie = f"{prefix}:{iri[len(base) :]}"
                    if avoid_terms and self._is_term(curie):
                        continue
                    # a processor takes the shortest compact IRI, then the first in code order
                    if not best or (len(curie), curie) < (len(best), best):
                        best = curie
        return best or iri

    def _selection_map(self) -> dict[str, dict[tuple[str, str], str]]:
        # iri -> (container or "", "@id" or "") -> the term a processor selects for it
        if self._selection is None:
            selection: dict[str, dict[tuple[str, str], str]] = {}
            merged: dict[str, tuple[str, str | None, bool]] = {}
            for source in (self._user, self._core):  # core last: its terms win
                if source is None:
                    continue
                for term, iri in source.terms.items():
                    merged[term] = (iri, source.containers.get(term), term in source.id_typed)
            for term in sorted(merged, key=lambda t: (len(t), t)):
                iri, container, id_typed = merged[term]
                if container == _OTHER:
                    continue
                slot = (container or "", "@id" if id_typed else "")
                selection.setdefault(iri, {}).setdefault(slot, term)
            self._selection = selection
        return self._selection

    def _inverse_map(self) -> dict[str, str]:
        if self._inverse is None:
            inverse: dict[str, str] = {}
            for source in (self._user, self._core):
                if source is None:
                    continue
                chosen: dict[str, str] = {}
                for term, iri in source.terms.items():
                    current = chosen.get(iri)
                    if current is None or (len(term), term) < (len(current), current):
                        chosen[iri] = term
                inverse.update(chosen)
            self._inverse = inverse
        return self._inverse


class HttpContextLoader:
    """The default ``DocumentLoader``: local copies first, then HTTP(S) with a timeout.

    ``reachable`` (URL prefixes) makes it offline: no local copies, and nothing is
    downloaded from outside those prefixes (the adapter's served contexts, say).
    """

    def __init__(self, timeout_s: float = FETCH_TIMEOUT_S, *, reachable: Sequence[str] | None = None) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._reachable = None if reachable is None else tuple(reachable)

    async def __call__(self, url: str) -> Any:
        if self._reachable is None:
            if url in context_files():
                return load_context(url)
        elif not url.startswith(self._reachable):
            raise LdContextNotAvailable("Unable to download context", url)
        if not url.startswith(("http://", "https://")):
            raise LdContextNotAvailable("Unable to download context", url)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Accept": "application/ld+json, application/json;q=0.9"}
        async with self._session.get(url, headers=headers) as response:
            if response.status != 200:
                raise LdContextNotAvailable("Unable to download context", f"{url} (HTTP {response.status})")
            text = await response.text()
        try:
            return json.loads(text)
        except ValueError as exc:
            raise BadRequestData("Invalid JSON in downloaded context", url) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class ContextResolver:
    """Resolves request contexts into ``TermContext`` objects, caching documents and results."""

    def __init__(self, loader: DocumentLoader) -> None:
        self._loader = loader
        self._documents: dict[str, Any] = {}
        self._resolved: dict[str | tuple[str, ...], TermContext] = {}
        core = load_context(CORE_CONTEXT)["@context"]
        self._core_map = _TermMap([core] if isinstance(core, Mapping) else list(core))
        self.core = TermContext(None, None, self._core_map)

    def cached(self, value: Any) -> TermContext | None:
        """The resolved context if it is already known (no I/O)."""
        if value is None:
            return self.core
        return self._resolved.get(_key(value))

    async def resolve(self, value: Any) -> TermContext:
        """The ``TermContext`` of a request ``@context`` (a URL, an object, or a list of them)."""
        if value is None:
            return self.core
        key = _key(value)
        found = self._resolved.get(key)
        if found is not None:
            return found
        _check_context_value(value)
        definitions: list[Mapping[str, Any]] = []
        await self._collect(value, definitions, 0)
        context = TermContext(value, _TermMap(definitions), self._core_map)
        self._resolved[key] = context
        return context

    async def _collect(self, value: Any, out: list[Mapping[str, Any]], depth: int) -> None:
        if depth > _MAX_NESTING:
            raise BadRequestData("Invalid @context", "too deeply nested context references")
        if isinstance(value, list):
            for item in value:
                await self._collect(item, out, depth + 1)
        elif isinstance(value, str):
            if is_core_url(value):
                return
            document = await self._document(value)
            if not isinstance(document, Mapping) or "@context" not in document:
                raise BadRequestData("Invalid @context", f"{value}: the document has no @context member")
            await self._collect(document["@context"], out, depth + 1)
        elif isinstance(value, Mapping):
            out.append(value)
        elif value is not None:
            raise BadRequestData("Invalid @context", f"not a URL, an object or an array: {value!r}")

    async def _document(self, url: str) -> Any:
        if url in self._documents:
            return self._documents[url]
        try:
            document = await self._loader(url)
        except (BadRequestData, LdContextNotAvailable):
            raise
        except Exception as exc:  # noqa: BLE001 - any download failure means "not available"
            raise LdContextNotAvailable("Unable to download context", url) from exc
        self._documents[url] = document
        return document


def _container(value: Any) -> str | None:
    """``@container`` of a term definition: ``LIST``, ``SET``, ``_OTHER`` or ``None`` (none)."""
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else [None]
    if names == [LIST]:
        return LIST
    if names == [SET]:
        return SET
    return _OTHER if names else None


def _check_context_value(value: Any) -> None:
    """A body ``@context`` must be URL strings and objects, possibly in one array."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        raise BadRequestData("Invalid @context", "empty array")
    for item in items:
        if isinstance(item, str):
            if not _URI.match(item):
                raise BadRequestData("Invalid @context", f"not a URI: {item!r}")
        elif not isinstance(item, Mapping):
            raise BadRequestData("Invalid @context", f"not a URL or an object: {item!r}")


def _key(value: Any) -> str | tuple[str, ...]:
    # batches repeat the same short list of URLs in every entity: a tuple is the cheap key
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
