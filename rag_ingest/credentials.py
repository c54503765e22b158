"""Credentials written inside a document (an API key in a notebook's cell, a config
pasted into a wiki page, a private key in a DOCX), masked in its chunks.

A file of secrets (``.env``, ``.aws/credentials``, a key) is never read at all
(:func:`rag_ingest.parsers.sniff.secret`); these are the ones other documents carry.
Only forms no prose takes are matched (a provider's prefix and length, a PEM block), and
each is masked in place, ``*`` for each character, so the chunk keeps its size and its
offsets in the document's text.
"""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["MASKED", "mask_credentials", "masked_warning"]

# A warning naming what was masked in chunks starts so (a joined document's parts are
# summed).
_SAID = "credentials masked in"
MASKED = f"{_SAID} its chunks"

# A key is not the tail or head of a longer word: no such character before or after it.
_W = "[A-Za-z0-9_-]"
_E = rf"(?!{_W})"

# (what, pattern): group 1 is kept, group 2 masked. Each pattern opens with a literal, so
# the regular expression engine finds its candidates by a fast substring search: a
# leading \b or alternation made a pattern scan a 48 MB text in ~1 s instead of 0.05 s.
# No pattern may fail after an unbounded scan from each of many starts: "eyJ" 20,000
# times over took 0.96 s (quadratic), a key's BEGIN line 2,000 times without its END 3.3
# s. A start inside a word is refused at once, and a key's body runs to the next "-----".
_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (what, re.compile(pattern, re.S))
    for what, pattern in (
        ("AWS access key ID", rf"(A(?<!{_W}A)(?:KIA|SIA|BIA|CCA))([0-9A-Z]{{16}}){_E}"),
        *(
            (
                "AWS secret access key",
                rf"({name}[\"']?\s*[:=]\s*[\"']?)([A-Za-z0-9/+]{{40}})(?![A-Za-z0-9/+])",
            )
            # secret_access_key, secretAccessKey; SECRET_ACCESS_KEY
            for name in (
                r"ccess(?<=cret_access|ecretAccess)(?:_key|Key)",
                r"CCESS_KEY(?<=ECRET_ACCESS_KEY)",
            )
        ),
        # An Azure connection string's account key, and a shared access signature's.
        ("Azure storage key", r"(AccountKey=)([A-Za-z0-9+/]{86}==)"),
        ("Azure SAS signature", r"(sig=(?<=[?&]sig=))([A-Za-z0-9%+/=]{40,})"),
        ("SendGrid API key", rf"(SG\.)([A-Za-z0-9_-]{{22}}\.[A-Za-z0-9_-]{{43}}){_E}"),
        ("GitHub token", rf"(gh(?<!{_W}gh)[pousr]_)([A-Za-z0-9_]{{36,255}}){_E}"),
        ("GitHub token", rf"(github_pat_)([A-Za-z0-9_]{{22,255}}){_E}"),
        ("GitLab token", r"(glpat-)([A-Za-z0-9_-]{20,})"),
        ("Slack token", r"(xox[abposr]-)([A-Za-z0-9-]{10,})"),
        ("Slack webhook", r"(hooks\.slack\.com/services/)([A-Za-z0-9/_-]{20,})"),
        ("Stripe key", r"(_live_)([A-Za-z0-9]{20,})"),
        ("Google API key", rf"(AIza)([0-9A-Za-z_-]{{35}}){_E}"),
        ("Anthropic API key", r"(sk-ant-[a-z]+\d\d-)([A-Za-z0-9_-]{40,})"),
        (
            "OpenAI API key",
            rf"(sk-(?<!{_W}sk-)(?:proj-|svcacct-|admin-)?)"
            rf"([A-Za-z0-9_-]{{20,}}T3BlbkFJ[A-Za-z0-9_-]{{20,}}|(?<=proj-)[A-Za-z0-9_-]{{40,}})",
        ),
        ("Hugging Face token", rf"(hf_(?<!{_W}hf_))([A-Za-z0-9]{{34}}){_E}"),
        ("npm token", rf"(npm_(?<!{_W}npm_))([A-Za-z0-9]{{36}}){_E}"),
        ("PyPI token", r"(pypi-)(AgE[A-Za-z0-9_-]{50,})"),
        # A JSON Web Token's signature: without it the token is accepted nowhere.
        (
            "JSON Web Token",
            rf"(eyJ(?<!{_W}eyJ)[A-Za-z0-9_-]{{8,}}\.eyJ[A-Za-z0-9_-]{{8,}}\.)([A-Za-z0-9_-]{{16,}})",
        ),
        (
            "private key",
            r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)([^-]+(?:-(?!----)[^-]*)*)"
            r"(?=-----END [A-Z ]*PRIVATE KEY)",
        ),
        # user:password@host; a port (host:8080/...) has no "@" before the next "/".
        ("password in a URL", r"(://[^/\s:@]+:)([^@/\s]{3,})(?=@(?P<host>[\w.-]+))"),
    )
)


# A value a document shows as an example, not a credential: AWS's documented keys
# (AKIAIOSFODNN7EXAMPLE), and a URL's placeholder ("user:password@", "<password>").
_EXAMPLE = re.compile(
    r"(?i).*example.*|[<{$%[(].*|\*+|x{3,}|\.{3}|pass(?:word)?|passwd|pwd|secret|changeme"
)


# A URL's host that documentation uses (RFC 2606 and loopback): Node.js's manual shows
# "https://abc:xyz@example.com" six times.
_EXAMPLE_HOST = re.compile(
    r"(?i)(?:.*\.)?(?:example(?:\.(?:com|org|net))?|localhost|test|invalid)|127\.0\.0\.1"
)
# A key's body, unless the text parser left it out already ("[encoded data, ...]").
_KEY_BODY = re.compile(r"[A-Za-z0-9+/=]{16}")


def _masked(value: str) -> str:
    return re.sub(r"\S", "*", value)  # a PEM body keeps its line breaks


def mask_credentials(text: str) -> tuple[str, Counter[str]]:
    """``text`` with the credentials in it masked, and how many of each kind."""
    found: Counter[str] = Counter()
    for what, pattern in _KINDS:

        def mask(match: re.Match[str], what: str = what) -> str:
            value = match.group(2)
            host = match.groupdict().get("host")
            if (
                _EXAMPLE.fullmatch(value)
                or (what == "private key" and not _KEY_BODY.search(value))
                or (host is not None and _EXAMPLE_HOST.fullmatch(host))
            ):
                return match.group(0)
            found[what] += 1
            return match.group(1) + _masked(match.group(2))

        text = pattern.sub(mask, text)
    return text, found


def masked_warning(found: Counter[str], where: str = "its chunks") -> str:
    """The warning naming what was masked: ``credentials masked in its chunks: AWS access
    key ID (2), private key (1) (chunk.mask_credentials)``."""
    kinds = ", ".join(
        f"{what} ({n})" for what, n in sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return f"{_SAID} {where}: {kinds} (chunk.mask_credentials)"
