"""Where a chunk of source code sits: the function, method or class it belongs to.

Definitions are found by their header lines, a few patterns per language family, and
nesting follows indentation, as code is written. Not a parse: it costs about a
millisecond per thousand lines, needs no grammar to install, and works on fragments and
syntax a parser would reject. A definition's scope ends at the next line indented no
deeper than its header (a closing brace, or a Python dedent).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

__all__ = ["Outline", "header_pattern", "outline"]

_I = r"^[ \t]*"
_JVM_TYPES = (
    _I + r"(?:(?:public|private|protected|internal|static|final|abstract|sealed|open|data|"
    r"partial|inner|enum|annotation|case|export|default)[ \t]+)*"
    r"(?:class|interface|enum|struct|record|object|trait|protocol|extension)[ \t]+(?P<n>\w+)"
)
_JVM_FUNCTIONS = (
    _I + r"(?:(?:public|private|protected|internal|static|final|override|open|suspend|inline|"
    r"mutating|class|abstract|async)[ \t]+)*(?:fun|def|func)[ \t]+(?:<[^>\n]*>[ \t]*)?"
    r"(?:\w+\.)?(?P<n>\w+)"
)
# Java, C#, Dart: a method is a header with at least one modifier, its type and its name.
_JAVA_METHODS = (
    _I + r"(?:(?:public|private|protected|internal|static|final|abstract|override|virtual|"
    r"async|synchronized|native|sealed|extern|unsafe|new)[ \t]+)+(?:[\w<>\[\],.?]+[ \t]+)+"
    r"(?P<n>\w+)[ \t]*\("
)
_JS = (
    _I + r"(?:export[ \t]+)?(?:default[ \t]+)?(?:async[ \t]+)?function\*?[ \t]*(?P<n>[\w$]+)",
    _I + r"(?:export[ \t]+)?(?:default[ \t]+)?(?:declare[ \t]+)?(?:abstract[ \t]+)?"
    r"(?:class|interface|enum|namespace)[ \t]+(?P<n>[\w$]+)",
    _I + r"(?:export[ \t]+)?(?:const|let|var)[ \t]+(?P<n>[\w$]+)[ \t]*(?::[^=\n]+)?=[ \t]*"
    r"(?:async[ \t]*)?(?:function\b|\([^)\n]*\)[ \t]*(?::[^=\n]+)?=>|[\w$]+[ \t]*=>)",
    _I + r"(?:export[ \t]+)?type[ \t]+(?P<n>\w+)[ \t]*(?:<[^>\n]*>)?[ \t]*=",
    # A method: an indented name with its parameters and a body opening on the line.
    r"^[ \t]+(?:(?:public|private|protected|static|readonly|async|get|set|override)"
    r"[ \t]+)*(?!(?:if|for|while|switch|catch|return|function|else|do|with)\b)"
    r"(?P<n>[\w$]+)[ \t]*(?:<[^>\n]*>)?\([^)\n]*\)[ \t]*(?::[^{\n]+)?\{",
)
_C = (
    _I + r"(?:template[ \t]*<[^>\n]*>[ \t]*)?(?:class|struct|namespace|union|enum(?:[ \t]+class)?)"
    r"[ \t]+(?P<n>\w+)[^;\n]*$",
    # A function definition's header starts a line: a type, a name and "(", and no ";".
    r"^(?!(?:if|for|while|switch|return|else|do|case|goto|typedef|using|static_assert)"
    r"\b)[A-Za-z_][\w \t*&:<>,]*?[ \t*&](?P<n>~?[A-Za-z_]\w*(?:::~?\w+)*)[ \t]*\([^;\n]*$",
    # Or its name starts the line, its type on the line before, its body's "{" after.
    r"^(?!(?:if|for|while|switch|return|else|do)\b)(?P<n>[A-Za-z_]\w*(?:::~?\w+)*)"
    r"[ \t]*\([^;{}]*\)[ \t]*(?:const[ \t]*)?\n\{",
)
_PATTERNS: dict[str, tuple[str, ...]] = {
    "python": (_I + r"(?:async[ \t]+)?(?:def|class)[ \t]+(?P<n>\w+)",),
    "js": _JS,
    "ts": _JS,
    "vue": _JS,
    "svelte": _JS,
    "go": (
        r"^func[ \t]*\([ \t]*\w*[ \t]*\*?(?P<q>\w+)[^)\n]*\)[ \t]*(?P<n>\w+)",
        r"^func[ \t]+(?P<n>\w+)",
        _I + r"type[ \t]+(?P<n>\w+)[ \t]+(?:struct|interface)\b",
    ),
    "java": (_JVM_TYPES, _JAVA_METHODS),
    "csharp": (_JVM_TYPES, _JAVA_METHODS),
    "dart": (_JVM_TYPES, _JAVA_METHODS),
    "kotlin": (_JVM_TYPES, _JVM_FUNCTIONS),
    "scala": (_JVM_TYPES, _JVM_FUNCTIONS),
    "swift": (_JVM_TYPES, _JVM_FUNCTIONS),
    "groovy": (_JVM_TYPES, _JVM_FUNCTIONS, _JAVA_METHODS),
    "rust": (
        _I + r"(?:pub(?:\([^)\n]*\))?[ \t]+)?(?:const[ \t]+)?(?:async[ \t]+)?(?:unsafe[ \t]+)?"
        r"(?:extern[ \t]+\"[^\"\n]*\"[ \t]+)?(?:fn|struct|enum|trait|mod|union)[ \t]+(?P<n>\w+)",
        _I + r"impl(?:[ \t]*<[^>\n]*>)?[ \t]+(?:[\w:<>, ]+[ \t]+for[ \t]+)?(?P<n>\w+)",
    ),
    "ruby": (_I + r"(?:def[ \t]+(?:self\.)?|class[ \t]+|module[ \t]+)(?P<n>[\w:]+[?!=]?)",),
    "php": (
        _I + r"(?:(?:public|private|protected|static|final|abstract|readonly)[ \t]+)*"
        r"(?:function|class|interface|trait|enum)[ \t]+&?(?P<n>\w+)",
    ),
    "c": _C,
    "cpp": _C,
    "lua": (_I + r"(?:local[ \t]+)?function[ \t]+(?P<n>[\w.:]+)",),
    "sol": (
        _I + r"(?:abstract[ \t]+)?(?:contract|interface|library|function|modifier|struct)"
        r"[ \t]+(?P<n>\w+)",
    ),
    "elixir": (_I + r"(?:defmodule|defp?|defmacrop?)[ \t]+(?P<n>[\w.?!]+)",),
    "perl": (_I + r"(?:sub|package)[ \t]+(?P<n>[\w:]+)",),
    "shell": (
        _I + r"function[ \t]+(?P<n>[\w:-]+)",
        _I + r"(?P<n>[\w:-]+)[ \t]*\(\)[ \t]*(?:\{|$)",
    ),
    "r": (_I + r"(?P<n>[\w.]+)[ \t]*(?:<-|=)[ \t]*function\b",),
    "julia": (
        _I + r"(?:function|macro|(?:mutable[ \t]+)?struct|module|abstract[ \t]+type)[ \t]+"
        r"(?P<n>[\w.!]+)",
    ),
    "proto": (
        _I + r"(?:message|service|enum|extend|oneof)[ \t]+(?P<n>[\w.]+)",
        _I + r"rpc[ \t]+(?P<n>\w+)",
    ),
    "sql": (
        _I + r"(?i:create[ \t]+(?:or[ \t]+replace[ \t]+)?(?:(?:temporary|temp|unique|"
        r"materialized|recursive)[ \t]+)*(?:table|view|function|procedure|index|trigger|type|"
        r"schema|sequence|domain|aggregate)[ \t]+(?:if[ \t]+not[ \t]+exists[ \t]+)?)"
        r"[\"`\[]?(?P<n>[\w.$]+)",
    ),
    # A rule's selector, as CSS, Sass and Less nest them (an "@" rule's line is taken
    # for a decorator: see _NOT_CODE).
    "css": (_I + r"(?P<n>[^\s/{};][^{};\n]*?)[ \t]*\{",),
    "cmake": (_I + r"(?i:function|macro)[ \t]*\([ \t]*(?P<n>[\w.-]+)",),
    "vim": (_I + r"(?:fu(?:nction)?|def)!?[ \t]+(?P<n>[\w:#.<>]+)[ \t]*\(",),
    "awk": (_I + r"func(?:tion)?[ \t]+(?P<n>\w+)",),
    "fortran": (
        _I + r"(?i:(?:(?:pure|impure|elemental|recursive|integer|real|logical|character|"
        r"complex|double[ \t]+precision)[ \t]+)*(?:subroutine|function|program|module|"
        r"block[ \t]*data)[ \t]+)"
        r"(?!(?i:procedure)\b)(?P<n>\w+)",
    ),
    # A method ("- (void)open:(NSString *)path"), or a C function.
    "objective-c": (*_C, r"^[-+][ \t]*\([^)\n]*\)[ \t]*(?P<n>\w+)"),
    "matlab": (
        _I + r"function\b[ \t]*(?:(?:\[[^\]\n]*\]|\w+)[ \t]*=[ \t]*)?(?P<n>[\w.]+)",
        _I + r"classdef\b(?:[ \t]*\([^)\n]*\))?[ \t]+(?P<n>\w+)",
    ),
    # A definition by a pattern, at the margin: "area[r_?Positive] := Pi r^2",
    # "f[x_, y_] = ...", "Options[f] = ..." and "f::usage = ..." are not.
    "mathematica": (r"^(?P<n>[A-Za-z$][\w$`]*)\[[^\]\n]*_[^\n]*?\][ \t]*:?=",),
    # A key whose value opens below it (an object, a list): its chunks say the key path.
    "json": (_I + r'"(?P<n>(?:[^"\\\n]|\\.)+)"[ \t]*:[ \t]*[{\[][ \t]*$',),
    "yaml": (
        _I + r"(?:-[ \t]+)?(?P<n>\"[^\"\n]+\"|'[^'\n]+'|[^\s#'\"\-?:{\[][^:#\n]*?)[ \t]*:"
        r"[ \t]*(?:[|>][-+0-9]*)?[ \t]*(?:#.*)?$",
    ),
}
_KEY_PATHS = {"json", "yaml"}  # every key is qualified by the keys it is under
# A YAML key whose value is a block scalar: the lines under it are text, not keys.
_BLOCK_SCALAR = re.compile(r":[ \t]*[|>][-+0-9]*[ \t]*(?:#.*)?$")
_COMPILED = {
    language: [re.compile(p, re.MULTILINE) for p in patterns]
    for language, patterns in _PATTERNS.items()
}
# Lines that neither open nor close a scope: comments and decorators (and, in C, the
# preprocessor). A closing "*/" or a docstring line counts as code; close enough.
_NOT_CODE = ("#", "//", "/*", "*", "--", "@", "%")
# And a language's own: Fortran's "!", and fixed-form Fortran's "C" (or "c", "*") in the
# first column before a space or mark (code starts in column 7 there).
_COMMENT = {"fortran": re.compile(r"[ \t]*!|[cC*](?![\w(]|[ \t]*=)")}
# Where a definition ends, in a language whose layout does not say it: Fortran's "end",
# "end subroutine", ... (fixed-form code starts every statement in column 7, a unit's
# header and body alike), not its "end if" or "end do".
_END = {
    "fortran": re.compile(
        r"[ \t]*(?:\d+[ \t]+)?(?i:end)(?![ \t]*(?i:if|do|select|where|forall|associate|"
        r"block(?![ \t]*data)|type|interface|enum|critical|team)\b)(?:[ \t]+\w[^\n]*)?[ \t]*$"
    )
}


# Where a class's methods are, in a language whose methods are written at the margin
# between lines that open and close their class: Objective-C's "@implementation Store"
# (or "@interface", a category's "Store (Sync)") to its "@end". Methods there are named
# under it ("Store.open").
_CLASSES = {
    "objective-c": re.compile(
        r"^@(?:implementation|interface|protocol)[ \t]+(?P<n>\w+)|^@end\b", re.MULTILINE
    )
}


def header_pattern(language: str | None) -> str | None:
    """One regular expression for a line that starts a definition in ``language`` (its
    header patterns, without their groups, multiline in a scoped flag), or None."""
    patterns = _PATTERNS.get(language or "")
    if not patterns:
        return None
    return "(?m:" + "|".join(re.sub(r"\(\?P<\w+>", "(?:", p) for p in patterns) + ")"


def _width(indent: str) -> int:
    return len(indent.expandtabs(4))


@dataclass
class Outline:
    """A file's lines and, for each, the definition it is in (``None`` at top level)."""

    line_starts: list[int]
    symbols: list[str | None]
    code: list[bool]  # the line opens or continues code (not blank, not a comment)
    headers: dict[int, str]  # line index -> the definition that starts there

    def line(self, offset: int) -> int:
        """The 0-based line holding ``offset``."""
        return bisect_right(self.line_starts, offset) - 1

    def symbol(self, start: int, end: int) -> str | None:
        """The definition a chunk ``[start, end)`` belongs to: the one its first line of
        code is in (or starts), else the first one it holds."""
        first, last = self.line(start), self.line(max(start, end - 1))
        for n in range(first, last + 1):
            if self.code[n]:
                return self.headers.get(n) or self.symbols[n] or self._first_header(n, last)
        return None

    def _first_header(self, first: int, last: int) -> str | None:
        return next((self.headers[n] for n in range(first, last + 1) if n in self.headers), None)


def outline(text: str, language: str | None) -> Outline:
    """Lines and definitions of ``text``; with no patterns for ``language``, lines only."""
    line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
    found: dict[int, str] = {}  # line start -> the name defined there
    for pattern in _COMPILED.get(language or "", ()):
        for match in pattern.finditer(text):
            name, qualifier = match.group("n"), match.groupdict().get("q")
            found.setdefault(match.start(), f"{qualifier}.{name}" if qualifier else name)
    classes = _CLASSES.get(language or "")
    if classes is not None and found:
        marks = list(classes.finditer(text))
        starts = [m.start() for m in marks]
        for at in found:
            # The last mark before a method: its class, unless that is an "@end".
            i = bisect_right(starts, at) - 1
            if i >= 0 and marks[i].group("n") and "." not in found[at]:
                found[at] = f"{marks[i].group('n')}.{found[at]}"
    symbols: list[str | None] = []
    code: list[bool] = []
    headers: dict[int, str] = {}
    stack: list[tuple[int, str]] = []  # (indent, qualified name)
    comment = _COMMENT.get(language or "")
    ends = _END.get(language or "")
    scalar: int | None = None  # the indent of a YAML key whose block scalar runs on
    for n, start in enumerate(line_starts):
        end = line_starts[n + 1] - 1 if n + 1 < len(line_starts) else len(text)
        line = text[start:end]
        stripped = line.lstrip()
        is_code = bool(stripped) and not stripped.startswith(_NOT_CODE)
        if is_code and comment is not None and comment.match(line):
            is_code = False
        if scalar is not None:
            if not stripped or _width(line[: len(line) - len(stripped)]) > scalar:
                # A script under 'run: |' whose line ends in ':' ('Deploy:') is not a key.
                symbols.append(stack[-1][1] if stack else None)
                code.append(bool(stripped))
                continue
            scalar = None
        # At a header's indent, ")" or "]" ends its parameters (black's style) and "{"
        # opens its body (Allman style): neither ends the definition.
        if ends is not None:
            name = found.get(start)
            if is_code and name is not None:
                stack.append((0, f"{stack[-1][1]}.{name}" if stack else name))
                headers[n] = stack[-1][1]
            symbols.append(stack[-1][1] if stack else None)
            code.append(is_code)
            if is_code and stack and ends.match(line):
                stack.pop()
            continue
        if is_code and not stripped.startswith((")", "]", "{")):
            indent = _width(line[: len(line) - len(stripped)])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            if language == "yaml" and _BLOCK_SCALAR.search(line):
                scalar = indent
            name = found.get(start)
            if name is not None and language in _KEY_PATHS:
                name = name.strip("'\"")
            if name is not None:
                if stack and ("." not in name or language in _KEY_PATHS):
                    name = f"{stack[-1][1]}.{name}"
                stack.append((indent, name))
                headers[n] = name
        symbols.append(stack[-1][1] if stack else None)
        code.append(is_code)
    return Outline(line_starts, symbols, code, headers)
