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
  tail (always short), else a ``prefix:suffix`` form, else the full IRI.

Remote contexts come from the project's local copies first (``adapter.ngsild.contexts``), then
over HTTP (5 s timeout). Downloads are cached; a failure is ``LdContextNotAvailable`` (503).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from adapter.ngsild.broker.errors import BadRequestData, LdContextNotAvailable
from adapter.ngsild.contexts import CORE_CONTEXT, context_files, load_context

__all__ = [
    "CORE_URL",
    "DEFAULT_VOCAB",
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
        for term in raw:
            iri = self._resolve(term, set())
            if iri is not None:
                self.terms[term] = iri
                value = raw[term]
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

    def compact(self, iri: str) -> str:
        found = self._compacted.get(iri)
        if found is not None:
            return found
        term = self._inverse_map().get(iri)
        if term is None:
            term = self._shorten(iri)
        self._compacted[iri] = term
        return term

    def _shorten(self, iri: str) -> str:
        if iri.startswith(DEFAULT_VOCAB) and len(iri) > len(DEFAULT_VOCAB):
            return iri[len(DEFAULT_VOCAB):]
        user = self._user
        if user is not None and user.vocab and iri.startswith(user.vocab) and len(iri) > len(user.vocab):
            tail = iri[len(user.vocab):]
            if tail not in user.terms and tail not in self._core.terms:
                return tail
        best = ""
        best_iri = ""
        for source in (self._core, user):
            if source is None:
                continue
            for prefix, base in source.prefixes.items():
                if iri.startswith(base) and len(iri) > len(base) and len(base) > len(best_iri):
                    best, best_iri = prefix, base
        if best:
            return f"{best}:{iri[len(best_iri):]}"
        return iri

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
    """The default ``DocumentLoader``: local copies first, then HTTP(S) with a timeout."""

    def __init__(self, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, url: str) -> Any:
        if url in context_files():
            return load_context(url)
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
