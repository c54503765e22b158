"""docling's HTML and Word readers keep a document's words as written: a word split
across tags stays one word, and typography stays as typed (parsers/docling_text.py)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rag_ingest.parsers import ParseOptions, parse_file
from rag_ingest.parsers.docling_text import GLUE, runs_joined
from tests import docs

OPTIONS = ParseOptions()


def _text(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return parse_file(str(path), name, OPTIONS).text


def _page(body: str) -> bytes:
    return f"<html><head><title>t</title></head><body>{body}</body></html>".encode()


def test_a_word_split_across_html_tags_is_one_word(tmp_path: Path) -> None:
    """docling stripped each run and joined runs with a space: "**W** orld",
    "[link](...) s", "Head ing s", a drop cap's "T he", "m 3", "( BGB )"."""
    text = _text(
        tmp_path,
        "p.html",
        _page(
            "<h2>Head<em>ing</em>s here</h2>"
            '<p><span class="dropcap">T</span>he <b>W</b><!-- a comment -->orld of <a href="https://x.org/">link</a>s,'
            " 15 m<sup>3</sup> of H<sub>2</sub>O (<a href='https://x.org/bgb'>BGB</a>).</p>"
            "<p>Das Wort \u201e<i>Befragte</i>\u201c und <small>Stichworten</small>. Ende</p>"
            '<p>He said \u201c<i>this</i>\u201d and "<b>that</b>".</p>'
            "<p><em>Hier geht zur <a href='https://x.org/a'>Anmeldung</a>.</em></p>"
            "<p>\u6211\u4eec<a href='https://x.org/c'>\u516c\u53f8</a>\u7684</p>"
        ),
    )
    assert "## Headings here" in text, text
    assert (
        "The **W**orld of [link](https://x.org/)s, 15 m3 of H2O ([BGB](https://x.org/bgb))." in text
    ), text
    assert "Das Wort \u201e*Befragte*\u201c und Stichworten. Ende" in text, text
    assert 'He said \u201c*this*\u201d and "**that**".' in text, text
    # The full stop was a run of its own, in italics: not "*.*".
    assert "*Hier geht zur* [*Anmeldung*](https://x.org/a).\n" in text + "\n", text
    assert "\u6211\u4eec[\u516c\u53f8](https://x.org/c)\u7684" in text, text
    assert GLUE not in text


def test_runs_side_by_side_that_a_page_sets_apart_keep_their_space(tmp_path: Path) -> None:
    """Links or labels with no space between them are set apart by the page's style (a
    menu, "Reply" and "Delete", two dates): a capital after a letter, a word after a
    full stop, a digit after a digit, and blocks keep theirs."""
    text = _text(
        tmp_path,
        "p.html",
        _page(
            "<p><a href='https://x.org/r'>Reply</a><a href='https://x.org/d'>Delete</a></p>"
            "<p>Wie viel? <span>Sau?</span><span>Taschengeld</span></p>"
            "<p><time>20. April 2017</time><time>13. Juni 2017</time></p>"
            "<p>arXiv <span>1706.02582</span> [<a href='//arxiv.org/cs'>cs.LG</a>].</p>"
            "<div>text<div>inner</div>tail</div>"
            "<p>Ideal ist.\n<br><br>\nMehr Demokratie\n<br>wagen</p>"
            "<ul><li>intro<ul><li>sub</li></ul></li></ul>"
        ),
    )
    assert "[Reply](https://x.org/r) [Delete](https://x.org/d)" in text, text
    assert "Sau? Taschengeld" in text and "20. April 2017 13. Juni 2017" in text, text
    # The bracket is the text's own (its link, relative, is dropped): its space stays.
    assert "1706.02582 [cs.LG]." in text, text
    assert "text\n\ninner\n\ntail" in text, text
    assert "Ideal ist.\n\nMehr Demokratie  \nwagen" in text, text
    assert "- intro\n    - sub" in text, text


def test_a_page_keeps_its_quotes_dashes_and_ellipses(tmp_path: Path) -> None:
    """docling's HTML reader wrote them in ASCII ("it's", "-", "..."), German quotes
    half-changed: the same words from a DOCX or a Markdown file kept them."""
    from docling.backend.html_backend import HTMLDocumentBackend

    words = (
        "Hier geht\u2019s \u2013 \u201eso\u201c, \u201cquoted\u201d \u2026"
        " 2013\u20132019 \u2014 end"
    )
    text = _text(
        tmp_path,
        "p.html",
        _page(
            f"<p>{words}</p><p>DVB\u2010T2 an\u00adge\u00adnom\u00admen"
            "\u00a0ok \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645</p>"
        ),
    )
    assert words in text, text
    # A hyphen is typed as ASCII; soft hyphens go, a no-break space is a space, and a
    # zero-width non-joiner (it spells a Persian word) stays.
    assert "DVB-T2 angenommen ok \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645" in text, text
    markdown = _text(tmp_path, "p.md", f"# T\n\n{words}\n".encode())
    assert words in markdown
    # The caller's own docling keeps its own ways.
    assert HTMLDocumentBackend._clean_unicode("it\u2019s \u2026") == "it's ..."


def _docling_texts(data: bytes, name: str, fmt: Any, backend: Any) -> list[str]:
    """The texts docling itself reads of ``data``, as a caller's own docling would."""
    from docling.datamodel.document import InputDocument

    source = InputDocument(
        path_or_stream=io.BytesIO(data), format=fmt, backend=backend, filename=name
    )
    return [item.text for item in source._backend.convert().texts]


def test_the_callers_own_docling_reads_html_and_word_as_it_did(tmp_path: Path) -> None:
    from docling.backend.html_backend import HTMLDocumentBackend
    from docling.backend.msword_backend import MsWordDocumentBackend
    from docling.datamodel.base_models import InputFormat

    page = _page("<p>Hello <b>W</b>orld</p>")
    _text(tmp_path, "p.html", page)  # our patches installed
    texts = _docling_texts(page, "p.html", InputFormat.HTML, HTMLDocumentBackend)
    assert [text for text in texts if text != "t"] == ["Hello", "W", "orld"]

    word = docs.docx_runs([("Hello ", ""), ("W", "bold"), ("orld", "")])
    _text(tmp_path, "p.docx", word)  # our patches installed
    texts = _docling_texts(word, "p.docx", InputFormat.DOCX, MsWordDocumentBackend)
    assert texts == ["Hello", "W", "orld"]


def test_a_word_split_across_word_runs_is_one_word(tmp_path: Path) -> None:
    data = docs.docx_runs(
        [
            ("Hello ", ""),
            ("W", "bold"),
            ("orld and ", ""),
            ("it", "italic"),
            ("\u2019s fine, (", ""),
            ("bold", "bold"),
            (") done. ", ""),
            ("Apart", "italic"),
            (" end. The 1", ""),
            ("st", "superscript"),
            (" ", ""),
            ("para", "bold"),
            ("graph:", "bold"),  # a run of its own, the same emphasis
        ],
        [("Spelled", "bold"), ("Out", "italic")],  # emphasis of its own, in one word
    )
    text = _text(tmp_path, "p.docx", data)
    assert (
        "Hello **W**orld and *it*\u2019s fine, (**bold**) done. *Apart* end. The 1st"
        " **paragraph:**" in text
    ), text
    # Markdown cannot close one emphasis and open another inside a word: a space stays.
    assert "**Spelled** *Out*" in text, text


def test_marks_join_runs_only_where_they_stand() -> None:
    assert runs_joined(f"a **W** {GLUE}orld") == "a **W**orld"
    assert runs_joined(f"**para** **{GLUE}graph** **{GLUE})**") == "**paragraph**)"
    assert runs_joined(f"***a*** **{GLUE}b**") == "***a*** **b**"
    assert runs_joined(f"**a** ***{GLUE})***") == "**a**)"
    assert runs_joined(f"[*zur*](u) *{GLUE}.*") == "[*zur*](u)."
    assert runs_joined(f"x [{GLUE}link](u)") == "x[link](u)"
    # A bracket of the text's own, not a link's.
    assert runs_joined(f"x [{GLUE}cs.LG {GLUE}].") == "x [cs.LG]."
    assert runs_joined("no marks ( here )") == "no marks ( here )"
