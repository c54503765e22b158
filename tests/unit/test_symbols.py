from __future__ import annotations

import pytest

from rag_ingest.symbols import outline

PYTHON = '''\
"""Module docstring."""
import os


@dataclass
class Client:
    """A client."""

    def __init__(
        self,
        url: str,
    ) -> None:
        self.url = url

    @property
    async def fetch(self) -> bytes:
        def inner() -> int:
            return 1
        # a comment at the method's indent
        return b""


CONSTANT = 3
'''


def _symbols(text: str, language: str) -> dict[str, str | None]:
    """Each non-blank line's first word(s) -> the definition it is in."""
    lines = outline(text, language)
    return {
        line.strip(): lines.symbols[n] for n, line in enumerate(text.split("\n")) if line.strip()
    }


def test_python_definitions_nest_by_indentation() -> None:
    symbols = _symbols(PYTHON, "python")
    assert symbols['"""Module docstring."""'] is None
    assert symbols["class Client:"] == "Client"
    assert symbols['"""A client."""'] == "Client"
    # black's closing parenthesis at the header's indent does not end the method.
    assert symbols[") -> None:"] == "Client.__init__"
    assert symbols["self.url = url"] == "Client.__init__"
    assert symbols["return 1"] == "Client.fetch.inner"
    assert symbols['return b""'] == "Client.fetch"
    assert symbols["CONSTANT = 3"] is None


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        (
            "go",
            "package x\n\nfunc (s *Server) Start() error {\n\treturn nil\n}\n\nvar y = 1\n",
            {"return nil": "Server.Start", "var y = 1": None},
        ),
        (
            "js",
            "export class Store {\n  async get(key) {\n    return this.m[key];\n  }\n}\n"
            "const load = async (path) => {\n  return read(path);\n};\n"
            "if (ready) {\n  start();\n}\n",
            # an "if" block is not a definition
            {"return this.m[key];": "Store.get", "return read(path);": "load", "start();": None},
        ),
        (  # Allman braces, and a C header whose type is on the line before its name.
            "c",
            "static int\ncount_items(const char *s)\n{\n    return 0;\n}\n\nint total = 0;\n",
            {"return 0;": "count_items", "int total = 0;": None},
        ),
        (
            "rust",
            "impl<T> Cache<T> {\n    pub fn get(&self) -> T {\n        self.v\n    }\n}\n",
            {"self.v": "Cache.get"},
        ),
        (
            "proto",
            "service Publisher {\n  rpc Publish(PublishRequest) returns (PublishResponse) {\n"
            '    option (google.api.http) = { post: "/v1/topics" };\n  }\n}\n\n'
            "message Topic {\n  string name = 1;\n}\n",
            {
                'option (google.api.http) = { post: "/v1/topics" };': "Publisher.Publish",
                "string name = 1;": "Topic",
            },
        ),
        (  # Sass nesting; a declaration is not a rule.
            "css",
            ".nav {\n  color: red;\n  a:hover,\n  a:focus {\n    color: blue;\n  }\n}\n"
            "@media print {\n  .nav { display: none; }\n}\n",
            {"color: red;": ".nav", "color: blue;": ".nav.a:focus", "}": None},
        ),
        (
            "cmake",
            "FUNCTION(add_doc name)\n  set(x 1)\nENDFUNCTION()\nproject(p)\n",
            {"set(x 1)": "add_doc", "project(p)": None},
        ),
        (
            "vim",
            "function! s:Open(path) abort\n  execute 'e' a:path\nendfunction\nset nu\n",
            {"execute 'e' a:path": "s:Open", "set nu": None},
        ),
        ("awk", "function add(a, b) {\n  return a + b\n}\n", {"return a + b": "add"}),
        (  # A unit ends at its "end", not at "end if", "endif" or a line at its indent.
            "fortran",
            "module geo\ncontains\n  pure real function area(r)\n    if (r > 0) then\n"
            "      area = 3.14 * r * r\n    end if\n    endif\n    area = 0\n"
            "  end function area\n  module procedure x\nend module geo\nprogram main\n",
            {
                "area = 3.14 * r * r": "geo.area",
                "area = 0": "geo.area",
                "module procedure x": "geo",
                "program main": "main",
            },
        ),
        (  # Fixed form: every statement in column 7, comments and labels before it.
            "fortran",
            "      SUBROUTINE SOLVE(N)\nC     Solve it.\n      INTEGER N\n"
            "   10 CONTINUE\n      END\n      BLOCK DATA INIT\n      COMMON /C/ X\n"
            "      END BLOCK DATA INIT\n      PROGRAM MAIN\n",
            {
                "INTEGER N": "SOLVE",
                "10 CONTINUE": "SOLVE",
                "COMMON /C/ X": "INIT",
                "PROGRAM MAIN": "MAIN",
            },
        ),
        (  # Methods under their class (or category), to its "@end"; C functions not.
            "objective-c",
            "#import <Foundation/Foundation.h>\n@implementation Store\n"
            "- (NSString *)open:(NSString *)path {\n  return path;\n}\n@end\n"
            "static int count(void) {\n  return 1;\n}\n@implementation Store (Sync)\n"
            "+ (void)sync {\n  [self pull];\n}\n@end\n",
            {"return path;": "Store.open", "return 1;": "count", "[self pull];": "Store.sync"},
        ),
        (  # Definitions by patterns; a package's usage messages and options are not.
            "mathematica",
            'BeginPackage["Geo`"]\narea::usage = "area[r]"\nOptions[area] = {}\n'
            "area[r_?Positive] :=\n  Module[{s = r^2},\n    Pi s]\n"
            "norm[x_, y_] = Sqrt[x^2 + y^2]\nEndPackage[]\n",
            {
                "Options[area] = {}": None,
                "Pi s]": "area",
                "norm[x_, y_] = Sqrt[x^2 + y^2]": "norm",
                "EndPackage[]": None,
            },
        ),
        (
            "matlab",
            "function [m, s] = stats(x)\n  % Mean and spread.\n  m = mean(x);\nend\n"
            "classdef (Sealed) Account < handle\n  methods\n    function deposit(obj, n)\n"
            "      obj.b = obj.b + n;\n    end\n  end\nend\n",
            {"m = mean(x);": "stats", "obj.b = obj.b + n;": "Account.deposit"},
        ),
    ],
)
def test_brace_languages_nest_by_braces_and_indentation(
    language: str, source: str, expected: dict[str, str | None]
) -> None:
    symbols = _symbols(source, language)
    assert {line: symbols[line] for line in expected} == expected


def test_fortran_comment_lines_are_not_code() -> None:
    # Fixed form's "C" in column 1, and "!": a chunk starting there is named by the code
    # after it. "complex" and "c = 1" at the margin are code.
    source = "C     Solve it.\n      X = 1\n  ! note\ncomplex z\nc = 1\n*\n"
    assert outline(source, "fortran").code == [False, True, False, True, True, False, False]


def test_sql_statements_are_named_by_what_they_create() -> None:
    sql = (
        "-- Register functions.\ncreate or replace function stats_reset()\nRETURNS void\n\n"
        'CREATE TABLE IF NOT EXISTS "accounts" (\n  id int,\n  name text\n);\n'
    )
    lines = outline(sql, "sql")
    assert lines.symbol(0, len(sql)) == "stats_reset"
    assert lines.symbol(sql.index("CREATE TABLE"), len(sql)) == "accounts"
    assert _symbols(sql, "sql")["id int,"] == "accounts"


def test_a_chunk_is_named_by_its_first_line_of_code() -> None:
    lines = outline(PYTHON, "python")
    start = PYTHON.index("    @property")  # a decorator, then the method it decorates
    assert lines.symbol(start, start + 60) == "Client.fetch"
    inside = PYTHON.index("        self.url")
    assert lines.symbol(inside, inside + 10) == "Client.__init__"
    # Module-level code first: named by the first definition the chunk holds.
    assert lines.symbol(0, PYTHON.index("    def __init__")) == "Client"
    assert lines.symbol(PYTHON.index("CONSTANT"), len(PYTHON)) is None
    assert outline(PYTHON, None).symbol(0, len(PYTHON)) is None  # a language we don't know


def test_a_yaml_block_scalar_s_lines_are_not_keys() -> None:
    # A script under 'run: |' has lines ending in ':' that read as keys: the chunks after
    # them were named 'jobs.build.steps.Deploy'.
    workflow = (
        "jobs:\n  build:\n    steps:\n      - run: |\n          echo Deploy:\n"
        "          # Targets:\n\n          Finally:\n      - name: test\n"
        "        with:\n          args: >-\n            Flags:\n            -v\n"
        "  lint:\n    runs-on: ubuntu\n"
    )
    symbols = _symbols(workflow, "yaml")
    assert symbols["echo Deploy:"] == "jobs.build.steps.run"
    assert symbols["Finally:"] == "jobs.build.steps.run"  # after a blank line
    assert symbols["- name: test"] == "jobs.build.steps"
    assert symbols["Flags:"] == symbols["-v"] == "jobs.build.steps.with.args"
    assert symbols["lint:"] == "jobs.lint"
    assert symbols["runs-on: ubuntu"] == "jobs.lint"
