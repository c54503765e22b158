"""Jupyter notebooks (nbformat 4) as Markdown: the cells in order, code fenced.

Read as plain text, a notebook is JSON whose outputs can hold megabytes of
base64 images: chunks of escaped source and noise. Here markdown cells stay as
they are, code cells become fenced blocks in the kernel's language, text outputs
follow their cell (cut at ``MAX_OUTPUT`` characters), and images are left out.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rag_ingest.errors import BlankDocumentError, CorruptDocumentError
from rag_ingest.parsers.base import ParsedDocument, Segment
from rag_ingest.parsers.text import decode_text

__all__ = ["MAX_OUTPUT", "parse_notebook"]

MAX_OUTPUT = 2000


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _output(output: dict[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        text = _text(output.get("text"))
    elif kind in ("execute_result", "display_data"):
        text = _text((output.get("data") or {}).get("text/plain"))
    elif kind == "error":
        text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    else:
        return ""
    text = text.strip()
    if len(text) > MAX_OUTPUT:
        text = text[:MAX_OUTPUT] + "\n[... output cut]"
    return text


# A merge's conflict, as git writes it in a file (diff3's base section too).
_CONFLICT = re.compile(
    r"^<{7}[^\n]*\n(.*?)^(?:\|{7}[^\n]*\n.*?^)?={7}\r?\n(.*?)^>{7}[^\n]*\n",
    re.MULTILINE | re.DOTALL,
)


def _one_side(raw: str, warnings: list[str]) -> Any:
    """A notebook committed with merge conflicts in it (git writes its markers into the
    JSON, which no longer parses), read as one side of them: the first (the branch merged
    into), else the other. None when there are none, or neither side parses."""
    conflicts = len(_CONFLICT.findall(raw))
    if not conflicts:
        return None
    for side, which in ((1, "the first ('<<<<<<<')"), (2, "the second ('>>>>>>>')")):
        try:
            notebook = json.loads(_CONFLICT.sub(rf"\{side}", raw))
        except (ValueError, RecursionError):
            continue
        warnings.append(f"{conflicts} merge conflict(s) in it: read as {which} side of each")
        return notebook
    return None


def parse_notebook(path: str, name: str) -> ParsedDocument:
    with open(path, "rb") as f:
        raw, _, warnings = decode_text(f.read(), name)
    try:
        notebook = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        notebook = _one_side(raw, warnings)
        if notebook is None:
            raise CorruptDocumentError(f"{name}: not a notebook (invalid JSON: {exc})") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        version = notebook.get("nbformat") if isinstance(notebook, dict) else None
        raise CorruptDocumentError(
            f"{name}: not an nbformat 4 notebook (nbformat {version}); "
            "convert it with `jupyter nbconvert --to notebook`"
        )
    meta = notebook.get("metadata") or {}
    language = (meta.get("language_info") or {}).get("name") or (meta.get("kernelspec") or {}).get(
        "language"
    )
    fence = str(language or "")
    parts: list[str] = []
    for cell in notebook["cells"]:
        if not isinstance(cell, dict):
            continue
        source = _text(cell.get("source")).strip()
        if cell.get("cell_type") == "code":
            if source:
                parts.append(f"```{fence}\n{source}\n```")
            outputs = [_output(o) for o in cell.get("outputs") or [] if isinstance(o, dict)]
            text = "\n".join(o for o in outputs if o)
            if text:
                parts.append(f"```output\n{text}\n```")
        elif source:
            parts.append(source)
    if not parts:
        raise BlankDocumentError(f"{name}: a notebook without text: nothing to index")
    return ParsedDocument(
        file_type="notebook",
        segments=[Segment("\n\n".join(parts))],
        parser="ipynb",
        language=language,
        warnings=warnings,
    )
