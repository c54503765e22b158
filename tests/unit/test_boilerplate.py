"""A web page's boilerplate as trafilatura judges it is left out with
``parse.html_chrome = "guess"`` (parsers/boilerplate.py); by default only what markup
marks is."""

from __future__ import annotations

import importlib.util
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup

from rag_ingest.errors import MissingExtraError
from rag_ingest.parsers import ParseOptions, boilerplate, parse_file, pictures
from rag_ingest.parsers.boilerplate import Guess, drop_guessed_chrome
from rag_ingest.parsers.office import parse_html
from rag_ingest.settings import ParseSettings
from tests import docs

GUESS = ParseOptions(html_chrome="guess")
ARTICLE, COMMENT = docs.BLOG_ARTICLE, docs.BLOG_COMMENT
# A blog's chrome in plain <div>s, as most pages have it: nothing in its markup says so.
CHROME = [
    "Rail Blog crest in blue",  # the logo's alternative text
    "About our editors",
    "Share this post on Facebook, Twitter or by email",
    "Ten tips for packing light on long train journeys",
    "Leave a Reply",
    "Your email address will not be published",
    "All rights reserved",
]


def _parse(tmp_path: Path, name: str, data: bytes, options: ParseOptions) -> Any:
    path = tmp_path / name
    path.write_bytes(data)
    return parse_file(str(path), name, options)


def test_a_blog_page_is_read_without_the_chrome_trafilatura_finds(tmp_path: Path) -> None:
    """Menus, a logo, share buttons, related posts, a comment form and a footer in plain
    <div>s: kept by default (no markup marks them), left out when guessing. The article,
    its table and a reader's comment stay, read by docling as before."""
    marked = _parse(tmp_path, "blog.html", docs.blog_page().encode(), ParseOptions()).text
    guessed = _parse(tmp_path, "blog.html", docs.blog_page().encode(), GUESS)
    for text in (marked, guessed.text):
        assert "# Night trains | The Rail Blog" in text, text
        assert "# Night trains return to Europe" in text, text
        for paragraph in ARTICLE:
            assert paragraph in text, text
        assert "| Vienna to Paris | 59 euros |" in text, text
        assert COMMENT in text, text
        assert f"Once more: {ARTICLE[1]}" in text, text  # a soft hyphen's word found
    for chrome in CHROME:
        assert chrome in marked, chrome
        assert chrome not in guessed.text, chrome
    assert guessed.warnings == []


def test_a_page_s_one_main_is_read_alone_and_guessing_judges_its_parts(
    tmp_path: Path,
) -> None:
    """Its markup says what the page's main content is: the menu and footer outside it
    are left out either way; guessing judges what is inside it."""
    page = docs.blog_page().replace('<div class="wrap">', "<main>")
    page = page.replace("</form></div></div>", "</form></div></main>")
    assert page.count("main>") == 2
    marked = _parse(tmp_path, "main.html", page.encode(), ParseOptions()).text
    guessed = _parse(tmp_path, "main.html", page.encode(), GUESS).text
    for text in (marked, guessed):
        assert ARTICLE[2] in text and COMMENT in text, text
        assert "About our editors" not in text and "All rights reserved" not in text, text
    assert "Share this post" in marked and "Leave a Reply" in marked, marked
    assert "Share this post" not in guessed and "Leave a Reply" not in guessed, guessed


def test_what_is_outside_a_page_s_main_is_not_guessed_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trafilatura's text holding all of the page (its menu too) keeps nothing outside
    the page's one <main>."""
    page = docs.blog_page().replace('<div class="wrap">', "<main>")
    page = page.replace("</form></div></div>", "</form></div></main>")
    whole = BeautifulSoup(page, "html.parser").get_text(" ")
    monkeypatch.setattr(boilerplate, "main_text", lambda data: whole)
    text = _parse(tmp_path, "main.html", page.encode(), GUESS).text
    assert ARTICLE[2] in text and "Share this post" in text, text
    assert "About our editors" not in text and "All rights reserved" not in text, text


def test_a_page_past_markup_fast_size_is_not_guessed_and_says_so(tmp_path: Path) -> None:
    said = (
        "its chrome left out only as its markup marks it: parse.html_chrome = 'guess' "
        "applies to pages docling reads"
    )
    for chrome in ("guess", "markup"):
        options = ParseOptions(html_chrome=chrome, markup_fast_size=100)
        parsed = _parse(tmp_path, "blog.html", docs.blog_page().encode(), options)
        assert ARTICLE[0] in parsed.text and "All rights reserved" in parsed.text
        assert (said in parsed.warnings) == (chrome == "guess"), parsed.warnings


def test_a_saved_page_is_guessed_too(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Saved page"
    message.set_content(docs.blog_page(), subtype="html", cte="quoted-printable")
    message.make_related()
    parsed = _parse(tmp_path, "blog.mhtml", bytes(message), GUESS)
    assert parsed.file_type == "mhtml"
    assert ARTICLE[2] in parsed.text and COMMENT in parsed.text, parsed.text
    assert "All rights reserved" not in parsed.text, parsed.text


def test_pages_joined_into_one_are_not_guessed() -> None:
    """An EPUB's chapters made one page: not a web page, nothing of it left out."""
    text = parse_html(
        docs.blog_page().encode(), "book.html", 0, 2048, joined=True, chrome="guess"
    ).text
    assert "All rights reserved" in text and ARTICLE[0] in text, text


@pytest.mark.parametrize("fault", [None, ValueError("lxml choked"), RecursionError()])
def test_a_page_trafilatura_finds_nothing_in_or_fails_on_is_read_whole(
    fault: Exception | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trafilatura

    def extract(*args: Any, **kwargs: Any) -> str | None:
        if fault is not None:
            raise fault
        return None

    monkeypatch.setattr(trafilatura, "extract", extract)
    parsed = _parse(tmp_path, "blog.html", docs.blog_page().encode(), GUESS)
    assert "All rights reserved" in parsed.text and ARTICLE[0] in parsed.text
    assert parsed.warnings == [
        "trafilatura gave no main text for this page (parse.html_chrome = 'guess'): "
        "read whole, its chrome left out only as its markup marks it"
    ]


def test_the_worker_s_memory_limit_is_not_taken_for_a_failed_guess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trafilatura

    def extract(*args: Any, **kwargs: Any) -> str:
        raise MemoryError

    monkeypatch.setattr(trafilatura, "extract", extract)
    with pytest.raises(MemoryError):
        _parse(tmp_path, "blog.html", docs.blog_page().encode(), GUESS)


def test_guessing_needs_the_web_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused when the settings are read, not document by document in the workers."""
    assert ParseOptions.of(ParseSettings(html_chrome="guess")).html_chrome == "guess"
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "trafilatura" else found(name, *a),
    )
    with pytest.raises(MissingExtraError, match=r"rag-ingest\[web\]"):
        ParseOptions.of(ParseSettings(html_chrome="guess"))
    assert ParseOptions.of(ParseSettings()).html_chrome == "markup"


def _guessed(html: str, text: str | None, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    """``html`` with what ``text`` (trafilatura's text, given) does not hold left out."""
    monkeypatch.setattr(boilerplate, "main_text", lambda page: text)
    soup = BeautifulSoup(f"<html><body>{html}</body></html>", "html.parser")
    guess = drop_guessed_chrome(soup, b"")
    return str(soup.body), guess


def test_blocks_mostly_not_in_the_text_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Words are found by runs of four: a block of common words in another order (a
    menu's, here) is not found word by word, and one of a few found among more is
    left out."""
    body, guess = _guessed(
        "<p>one two three four five six</p><div>four three two one</div>"
        "<p>seven eight nine <i>ten</i> eleven</p><p>one two three zzz qqq vvv www</p>"
        "<div>seven eight nine ten: share this on all the sites</div>",
        "one two three four five six. seven eight nine ten eleven",
        monkeypatch,
    )
    assert body == (
        "<body><p>one two three four five six</p><p>seven eight nine <i>ten</i> eleven</p></body>"
    )
    assert guess == Guess(kept=11, total=32)


def test_a_word_is_found_as_trafilatura_writes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split across tags, by a soft hyphen or a zero-width space, or its accent a
    character of its own (NFD): one word, as trafilatura writes it."""
    page = (
        "<p>The <b>W</b>orld of m<sup>3</sup> and so on</p>"
        "<p>Hoch\u00adgeschwindigkeits\u200bzug f\u00e4hrt</p>"
        "<p>Cafe\u0301 au lait tonight</p><p>menu entry here now</p>"
    )
    body, _ = _guessed(
        page,
        "The World of m3 and so on\nHochgeschwindigkeitszug f\u00e4hrt\nCaf\u00e9 au lait tonight",
        monkeypatch,
    )
    assert body == f"<body>{page.removesuffix('<p>menu entry here now</p>')}</body>"


def test_what_has_no_words_goes_with_the_element_around_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A picture, its marker, a formula's markup, code and hidden text follow the
    nearest element around them that has words: kept in the article, left out with the
    chrome. A script's and a comment's words are not the page's."""
    marker = pictures.marker(1)
    tex = r"{\displaystyle x_{1},\dots ,x_{N} \in \mathbb {R} ^{d}}"
    body, _ = _guessed(
        '<div class="top"><img alt="logo"/><a>Home page of the shop</a><pre>$ curl shop</pre>'
        '</div><div class="post"><p>an article of many words here</p>'
        '<div class="listing"><p>Filename: main.rs</p><pre>fn main() { let listing = 1; }</pre>'
        "</div><p>and more of the article here"
        "<!-- written by the editor with a plugin of the site --></p>"
        f'<figure><img alt="photo"/></figure><p>{marker}</p><p>where x is <math><semantics>'
        f'<mi>x</mi><annotation encoding="application/x-tex">{tex}</annotation></semantics>'
        "</math> a number we know<script>var shown = 'never on the page as such';</script>"
        '</p><span style="display: none">secret words</span></div>',
        "an article of many words here and more of the article here where x is a number we know",
        monkeypatch,
    )
    assert "logo" not in body and "Home page" not in body and "curl" not in body, body
    assert "fn main() { let listing = 1; }" in body, body
    assert '<img alt="photo"/>' in body and marker in body, body
    assert "<mi>x</mi>" in body and "a number we know" in body, body
    assert "secret words" in body, body


def test_text_beside_blocks_kept_is_left_out_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    body, _ = _guessed(
        "<div><p>one two three four five</p>share this page with friends<b>!</b></div>",
        "one two three four five",
        monkeypatch,
    )
    assert body == "<body><div><p>one two three four five</p><b>!</b></div></body>"


def test_a_table_is_judged_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its cells' words together (a cell's one paragraph's too): a table mostly found is
    kept whole, one mostly not dropped whole (trafilatura keeps some of a table's
    columns). A cell of blocks of its own has them judged alone, and when they go it is
    emptied: its row keeps its columns."""
    body, _ = _guessed(
        "<table><tr><th>alpha beta gamma delta</th><th>Version</th></tr>"
        "<tr><td>epsilon zeta eta theta</td><td><p>v1.2 today</p></td></tr></table>"
        "<table><tr><td>Share on</td><td>Facebook</td><td>alpha beta gamma delta</td></tr>"
        "<tr><td>Follow us on</td><td>Twitter and more</td><td>Mail</td></tr></table>"
        "<table><tr><td>iota kappa lambda mu</td><td><p>Share on</p><p>Facebook</p></td></tr>"
        "</table>",
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu",
        monkeypatch,
    )
    assert body == (
        "<body><table><tr><th>alpha beta gamma delta</th><th>Version</th></tr>"
        "<tr><td>epsilon zeta eta theta</td><td><p>v1.2 today</p></td></tr></table>"
        "<table><tr><td>iota kappa lambda mu</td><td></td></tr></table></body>"
    )


@pytest.mark.parametrize("text", [None, "nothing of this page at all here"])
def test_a_guess_of_nothing_leaves_the_page(
    text: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    html = "<p>one two three four five</p><p>six seven eight nine</p>"
    body, guess = _guessed(html, text, monkeypatch)
    assert guess is None
    assert body == f"<body>{html}</body>"
