"""Wiraya's XML and form bodies read into the document their JSON body is, answers written
back as XML, and the choice of the answer's format. Pure and stdlib only, no I/O.

Seed 002: EnqueueCommunications consumes application/json, text/json, application/xml,
text/xml and application/x-www-form-urlencoded, and produces the four JSON and XML types.
Hostile bodies are bounded here the way defusedxml bounds them: a DOCTYPE (and with it every
entity declaration and external reference) is refused before anything is expanded, nesting
and element counts are capped; the body size was capped before this module sees it.

XML maps to the JSON document by one rule: an element with child elements (or a type
attribute) is an object of its children by local name, any other element is its text, and
the children of ``communications`` and ``placeholders`` are list items whatever their name.
``content``'s ``$type`` is its ``xsi:type`` attribute (the .NET DataContract way) or a plain
``type`` attribute; ``xsi:nil="true"`` is null; namespaces are ignored.

Forms use the key syntax jQuery and ASP.NET write: ``communications[0][content][$type]``, or
``communications[0].content.$type``; ``name[]`` appends to a list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import parse_qsl
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from smppgw.api.schemas import MAX_MESSAGES_PER_REQUEST, RequestError, shown
from smppgw.flow.submission import FieldError

__all__ = [
    "FORM_TYPE",
    "JSON_TYPES",
    "MAX_FORM_FIELDS",
    "MAX_XML_DEPTH",
    "MAX_XML_ELEMENTS",
    "XML_TYPES",
    "answer_type",
    "error_xml",
    "read_form",
    "read_xml",
    "results_xml",
]

JSON_TYPES: Final = ("application/json", "text/json")
XML_TYPES: Final = ("application/xml", "text/xml")
FORM_TYPE: Final = "application/x-www-form-urlencoded"

# A real request nests 6 deep (root, communications, item, content, placeholders, item) and
# has about 8 elements per communication.
MAX_XML_DEPTH: Final = 16
MAX_XML_ELEMENTS: Final = 20 * MAX_MESSAGES_PER_REQUEST
MAX_FORM_FIELDS: Final = 20 * MAX_MESSAGES_PER_REQUEST
_MAX_FORM_DEPTH: Final = 8
_MAX_FORM_INDEX_DIGITS: Final = 4

_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
_LIST_ELEMENTS: Final = frozenset({"communications", "placeholders"})
# XML 1.0 §2.2: the characters a document may hold; anything else is written as U+FFFD.
_NOT_XML: Final = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FORM_NAME: Final = re.compile(r"[^\[\].]+")
_FORM_STEP: Final = re.compile(r"\[([^\[\]]*)\]|\.([^\[\].]+)")

Document = dict[str, object]


def _refuse(code: Literal["invalid_xml", "invalid_form"], path: str, message: str) -> RequestError:
    return RequestError(FieldError(code, path, message))


# --- XML -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Element:
    name: str
    attributes: dict[str, str]
    line: int
    children: list[_Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


class _Refused(Exception):
    """Raised inside an expat handler to stop the parse; becomes an invalid_xml error."""


def read_xml(raw: bytes, charset: str | None = None) -> object:
    """The body as the JSON-shaped document, or RequestError(invalid_xml) naming the line.

    ``charset`` (from Content-Type) overrides the document's own declaration, as RFC 7303
    §3.2 says; expat knows UTF-8, UTF-16, ISO-8859-1, US-ASCII and Python's 8-bit codecs.
    """
    try:
        parser = expat.ParserCreate(encoding=charset, namespace_separator=" ")
    except (LookupError, ValueError):
        raise _refuse("invalid_xml", "", f"unknown charset {shown(charset or '')!r}") from None
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Element] = []
    roots: list[_Element] = []
    count = 0

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if len(stack) >= MAX_XML_DEPTH:
            raise _Refused(f"elements nest deeper than {MAX_XML_DEPTH} levels")
        if count > MAX_XML_ELEMENTS:
            raise _Refused(f"more than {MAX_XML_ELEMENTS} elements")
        element = _Element(name.rpartition(" ")[2], attributes, parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(name: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text.append(data)

    def doctype(*args: object) -> None:
        raise _Refused("a DOCTYPE is not accepted (no DTDs, no entity declarations)")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    try:
        parser.Parse(raw, True)
    except _Refused as exc:
        raise _refuse("invalid_xml", "",
                      f"invalid XML: {exc} (line {parser.CurrentLineNumber})") from None
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code) or "malformed"
        raise _refuse("invalid_xml", "", f"invalid XML: {reason} at line {exc.lineno}, "
                      f"column {exc.offset + 1}") from None
    except (LookupError, ValueError) as exc:   # an encoding expat cannot map
        raise _refuse("invalid_xml", "", f"invalid XML: {exc}") from None
    return _xml_value(roots[0], "")


def _xml_value(element: _Element, path: str) -> object:
    attributes = element.attributes
    if attributes.get(f"{_XSI} nil") in ("true", "1"):
        return None
    if path and element.name in _LIST_ELEMENTS:
        _no_text(element, path)
        return [_xml_value(child, f"{path}[{i}]") for i, child in enumerate(element.children)]
    type_name = attributes.get(f"{_XSI} type", attributes.get("type"))
    if not element.children and type_name is None:
        return "".join(element.text)
    _no_text(element, path)
    document: Document = {}
    if type_name is not None:
        # A qualified xsi:type ("d2p1:SMSFromAlpha") names the type after its prefix.
        document["$type"] = type_name.rpartition(":")[2]
    for child in element.children:
        child_path = f"{path}.{child.name}" if path else child.name
        if child.name in document:
            raise _refuse("invalid_xml", shown(child_path),
                          f"<{shown(child.name)}> appears twice (line {child.line})")
        document[child.name] = _xml_value(child, child_path)
    return document


def _no_text(element: _Element, path: str) -> None:
    if "".join(element.text).strip():
        raise _refuse("invalid_xml", shown(path) or element.name,
                      f"<{shown(element.name)}> holds both text and elements "
                      f"(line {element.line})")


def results_xml(results: Mapping[str, Mapping[str, object]]) -> bytes:
    """Wiraya's ``results`` as XML: one ``<result clientMessageId="...">`` per
    communication, in request order, with the JSON answer's fields as elements (a null
    ``trackingId`` is left out)."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>', "<EnqueueCommunicationsResponse>",
             "<results>"]
    for client_id, entry in results.items():
        parts.append(f"<result clientMessageId={quoteattr(_xml_safe(client_id))}>")
        for name, value in entry.items():
            if value is None:
                continue
            if isinstance(value, Mapping):
                parts.append(_fields_xml(name, value))
            else:
                parts.append(f"<{name}>{_xml_scalar(value)}</{name}>")
        parts.append("</result>")
    parts += ["</results>", "</EnqueueCommunicationsResponse>"]
    return "".join(parts).encode("utf-8")


def error_xml(error: Mapping[str, object]) -> bytes:
    """Our error body (``code``, ``field``, ``message``) as an ``<error>`` document."""
    return ('<?xml version="1.0" encoding="utf-8"?>' + _fields_xml("error", error)).encode()


def _fields_xml(name: str, fields: Mapping[str, object]) -> str:
    inner = "".join(f"<{key}>{_xml_scalar(value)}</{key}>" for key, value in fields.items())
    return f"<{name}>{inner}</{name}>"


def _xml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(_xml_safe(str(value)))


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


# --- forms -----------------------------------------------------------------------------------


def read_form(text: str) -> object:
    """An ``application/x-www-form-urlencoded`` body as the JSON-shaped document, or
    RequestError(invalid_form) naming the key. Values are strings; list indexes must run
    from 0 without gaps, so an error's ``communications[i]`` is the client's own i."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise _refuse("invalid_form", "", "a percent-encoded name or value is not UTF-8") from None
    except ValueError:
        raise _refuse("invalid_form", "", f"more than {MAX_FORM_FIELDS} fields") from None
    root: dict[str | int, object] = {}
    for key, value in pairs:
        _place(root, _form_steps(key), value, key)
    return _form_value(root, "")


def _form_steps(key: str) -> list[str | int | None]:
    """``communications[0][content][$type]`` → ["communications", 0, "content", "$type"];
    ``[]`` is None (append)."""
    name = _FORM_NAME.match(key)
    if name is None:
        raise _refuse("invalid_form", shown(key), f"'{shown(key)}' is not a field name")
    steps: list[str | int | None] = [name.group()]
    position = name.end()
    while position < len(key):
        step = _FORM_STEP.match(key, position)
        if step is None or len(steps) >= _MAX_FORM_DEPTH:
            raise _refuse("invalid_form", shown(key),
                          f"'{shown(key)}' is not a field name like communications[0][recipient]")
        bracket, dotted = step.groups()
        if dotted is not None:
            steps.append(dotted)
        elif bracket == "":
            steps.append(None)
        elif bracket.isdecimal() and bracket.isascii():
            if len(bracket) > _MAX_FORM_INDEX_DIGITS:
                raise _refuse("invalid_form", shown(key),
                              f"the index in '{shown(key)}' is too large")
            steps.append(int(bracket))
        else:
            steps.append(bracket)
        position = step.end()
    return steps


def _place(root: dict[str | int, object], steps: list[str | int | None], value: str,
           key: str) -> None:
    container = root
    for depth, step in enumerate(steps):
        if step is None:   # name[]: the next list index
            if any(not isinstance(existing, int) for existing in container):
                raise _refuse("invalid_form", shown(key),
                              f"'{shown(key)}' appends to something that is not a list")
            step = len(container)
        last = depth == len(steps) - 1
        existing = container.get(step)
        if last:
            if existing is not None:
                raise _refuse("invalid_form", shown(key), f"'{shown(key)}' is given twice")
            container[step] = value
            return
        if existing is None:
            existing = container[step] = {}
        if not isinstance(existing, dict):
            raise _refuse("invalid_form", shown(key),
                          f"'{shown(key)}' is given both as a value and with fields under it")
        container = existing


def _form_value(node: object, path: str) -> object:
    if not isinstance(node, dict):
        return node
    keys = list(node)
    if keys and all(isinstance(k, int) for k in keys):
        for expected, index in enumerate(sorted(keys)):
            if expected != index:
                raise _refuse("invalid_form", f"{path}[{expected}]",
                              f"'{path}[{index}]' is given without '{path}[{expected}]'")
        return [_form_value(node[i], f"{path}[{i}]") for i in range(len(keys))]
    if any(isinstance(k, int) for k in keys):
        raise _refuse("invalid_form", path or "",
                      f"'{path}' has both list indexes and field names under it")
    return {str(k): _form_value(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}


# --- the answer's format ---------------------------------------------------------------------


def answer_type(accept: str | None, request_type: str | None) -> str:
    """The media type to answer in: the client's most preferred of JSON_TYPES + XML_TYPES in
    ``Accept``; else (no Accept, ``*/*`` or only types we cannot write) the request's own
    type when it is one of those; else application/json (forms and bodies without a type)."""
    best: tuple[float, int] | None = None
    chosen: str | None = None
    for position, entry in enumerate((accept or "").split(",")):
        media, *parameters = (part.strip() for part in entry.split(";"))
        media = media.lower()
        if media not in JSON_TYPES + XML_TYPES:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        rank = (quality, -position)
        if quality > 0 and (best is None or rank > best):
            best, chosen = rank, media
    if chosen is not None:
        return chosen
    if request_type in JSON_TYPES + XML_TYPES:
        return request_type
    return JSON_TYPES[0]
