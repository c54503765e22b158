"""Credentials written inside a document (an API key in a notebook's cell, a config
pasted into a wiki page, a private key in a DOCX), masked in its chunks.

A file of secrets (``.env``, ``.aws/credentials``, a key) is never read at all
(:func:`rag_ingest.parsers.sniff.secret`); these are the ones other documents carry.
Only forms no prose takes are matched (a provider's prefix and length, a PEM block, a
setting named for a password, secret, token or API key given a value), and each is masked
in place, ``*`` for each character, so the chunk keeps its size and its offsets in the
document's text.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable
from typing import TypeVar

__all__ = ["MASKED", "mask_all", "mask_credentials", "masked_warning"]

# A warning naming what was masked in chunks starts so (a joined document's parts are
# summed).
_SAID = "credentials masked in"
MASKED = f"{_SAID} its chunks"

# A key is not the tail or head of a longer word: no such character before or after it.
_W = "[A-Za-z0-9_-]"
_E = rf"(?!{_W})"

# A setting's operator and value: "password = 'x'", "DB_PASSWORD=x", "password: x",
# "'password' => 'x'", "password := x". A quoted value runs to its quote; a bare one to the
# end of its word, and never into code (a call, an index, a condition).
_SETTING = (
    r"[\"']?[ \t]*(?::=|=>|:|=)(?![=>:])[ \t]*(?P<q>[\"'])?)"
    r"(?P<v>(?(q)[^\s\"'`\\]{6,200}|[^\s\"'`\\&<>,;()\[\]{}]{6,200}))"
    r"(?(q)(?=(?P=q))|(?=[\s,;)\]}&]|$))"
)

# (what, pattern): group 1 is kept, group 2 (a setting's: "v") masked. Each pattern opens
# with a literal, so the regular expression engine finds its candidates by a fast
# substring search: a leading \b or alternation made a pattern scan a 48 MB text in ~1 s
# instead of 0.05 s. No pattern may fail after an unbounded scan from each of many
# starts: "eyJ" 20,000 times over took 0.96 s (quadratic), a key's BEGIN line 2,000 times
# without its END 3.3 s. A start inside a word is refused at once, and a key's body runs
# to the next "-----".
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
        # Settings, last: a value a pattern above masked is not counted twice. The name's
        # literal comes first (see above); a look-behind completes it.
        ("password", rf"(assw(?<=[Pp]assw)(?:ord|d){_SETTING}"),
        ("password", rf"(ASSW(?<=PASSW)(?:ORD|D){_SETTING}"),
        ("secret", rf"(ecret(?<=[Ss]ecret)(?:_?key|Key)?{_SETTING}"),
        ("secret", rf"(ECRET(?<=SECRET)(?:_?KEY)?{_SETTING}"),
        ("token", rf"(oken(?<=[Tt]oken){_SETTING}"),
        ("token", rf"(OKEN(?<=TOKEN){_SETTING}"),
        ("API key", rf"(pi(?<=[Aa]pi)[_-]?[Kk]ey{_SETTING}"),
        ("API key", rf"(PI(?<=API)[_-]?(?:KEY|Key){_SETTING}"),
    )
)


# A value a document shows as an example, not a credential: AWS's documented keys
# (AKIAIOSFODNN7EXAMPLE), and a URL's placeholder ("user:password@", "<password>",
# "username:token@", "foo:bar@").
_EXAMPLE = re.compile(
    r"(?i).*example.*|[<{$%[(].*|\*+|x{3,}|\.{3}|(?:my)?pass(?:word)?|passwd|pwd|secret|token"
    r"|changeme|bar"
)


# A URL's host that documentation uses (RFC 2606 and loopback): Node.js's manual shows
# "https://abc:xyz@example.com" six times.
_EXAMPLE_HOST = re.compile(
    r"(?i)(?:.*\.)?(?:example(?:\.(?:com|org|net))?|localhost|test|invalid)|127\.0\.0\.1"
)
# A key's body, unless the text parser left it out already ("[encoded data, ...]").
_KEY_BODY = re.compile(r"[A-Za-z0-9+/=]{16}")

# A setting's value that is no credential, beyond what _EXAMPLE keeps of every kind (an
# example, "${DB_PASS}", "%s", "<token>"): a reference ("!vault", "*alias", a path), a
# placeholder ("YOUR_API_KEY", "your-token", "***"), a word or a name (letters alone,
# "self.token", "s3_connection", "CARD32"), a number, a URL, a resource name ("arn:..."),
# or a value naming what it stands for ("PassWordMustBeAtLeast6Chars."), or the next
# setting's name ("password= scmVersion=" in bash's completion for Maven).
_SETTING_KEPT = re.compile(
    r"(?i).*(?:your|dummy|sample|placeholder|fake|redacted|changeme|x{3}|\*{3}|\.{3}).*"
    r"|[*!&@#~/.].*|[a-z_-]+(?:\.[a-z_-]+)*[.,;:!?]?|[\d.:+-]+|0x[0-9a-f]+"
    r"|(?:arn|urn):.*|.*://.*|.*(?:pass|secret|token|key).*|[a-z_][a-z_.-]*="
    r"|(?-i:[a-z][a-z0-9]*(?:_[a-z0-9]+)+|[A-Z]+[0-9]*|[A-Z0-9]*_[A-Z0-9_]*)"
)
# A token's or an API key's own characters (base64, hex, a JWT's, "ya29.", "ghp_"): a
# special token of a language model ("<|endoftext|>", "[MASK]") is not one.
_TOKEN_VALUE = re.compile(r"[A-Za-z0-9_.~+/=%:-]+")
_IDENTIFIER = re.compile(r"[A-Za-z_$]+[0-9]*")  # a key's digits run through it
# What a setting's name is made of: "spring.datasource.password", "X-API-Key".
_NAME_CHARS = string.ascii_letters + string.digits + "_.-"
# The words that make a "token" a credential ("access_token", "refreshToken", "token"),
# unlike "NextToken", "ClientToken" or "page_token" (paging and idempotency tokens). An
# environment variable's name, in capitals ("CI_JOB_TOKEN"), is always taken for one.
_TOKEN_OWNERS = frozenset(
    {
        *("access", "auth", "api", "bearer", "refresh", "session", "secret", "private"),
        *("personal", "oauth", "id", "jwt", "bot", "vault", "sentry", "slack", "discord"),
        *("telegram", "github", "gitlab", "gh", "hf", "huggingface", "npm", "pypi"),
    }
)
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z0-9]+(?![a-z])")


def _not_a_setting(what: str, match: re.Match[str], value: str) -> bool:
    """Whether a setting's match is no credential: by its value, or by its name (under a
    namespace or a path, "AWS::ApiGateway::ApiKey"; a token that is not one)."""
    if _SETTING_KEPT.fullmatch(value):
        return True
    if what in ("token", "API key") and not _TOKEN_VALUE.fullmatch(value):
        return True
    start = match.start()
    window = match.string[max(0, start - 64) : start]
    before = window[len(window.rstrip(_NAME_CHARS)) :]  # "access_t", "spring.datasource.p"
    if start > len(before) and match.string[start - len(before) - 1] in ":/":
        return True
    # A service issues a token or an API key long and random: a short bare word after a
    # name in lower case is a variable ("token: parent2", "? token : parent2" in
    # TypeScript's compiler), unlike an environment variable's value.
    if (
        what in ("token", "API key")
        and match.group("q") is None
        and len(value) < 16
        and _IDENTIFIER.fullmatch(value)
        and not before.isupper()
    ):
        return True
    if what == "token" and not before.isupper():
        words = _WORDS.findall(before[:-1])  # less the look-behind's "t"
        return bool(words) and words[-1].lower() not in _TOKEN_OWNERS
    return False


def _masked(value: str) -> str:
    return re.sub(r"\S", "*", value)  # a PEM body keeps its line breaks


def _kept(what: str, match: re.Match[str], group: int | str) -> bool:
    """Whether a match is no credential (an example, a placeholder, no key's body):
    ``group`` is its value's."""
    value = match.group(group)
    host = match.groupdict().get("host")
    return bool(
        _EXAMPLE.fullmatch(value)
        or (what == "private key" and not _KEY_BODY.search(value))
        or (host is not None and _EXAMPLE_HOST.fullmatch(host))
        or (group == "v" and _not_a_setting(what, match, value))
    )


def mask_credentials(text: str) -> tuple[str, Counter[str]]:
    """``text`` with the credentials in it masked, and how many of each kind."""
    found: Counter[str] = Counter()
    for what, pattern in _KINDS:
        # Not pattern.sub: it copies the whole text for any match, kept or not (a 48 MB
        # text's 724 "token" words that were no setting had cost 0.1 s).
        value = "v" if "v" in pattern.groupindex else 2  # a setting's, or any other's
        spans = [
            match.span(value) for match in pattern.finditer(text) if not _kept(what, match, value)
        ]
        if not spans:
            continue
        found[what] += len(spans)
        parts: list[str] = []
        at = 0
        for start, end in spans:
            parts += (text[at:start], _masked(text[start:end]))
            at = end
        parts.append(text[at:])
        text = "".join(parts)
    return text, found


_Text = TypeVar("_Text", str, "str | None")


def mask_all(texts: Iterable[_Text]) -> tuple[list[_Text], Counter[str]]:
    """Each of ``texts`` masked (an empty one, or None, as it is), and how many of each
    kind in all."""
    found: Counter[str] = Counter()
    masked: list[_Text] = []
    for text in texts:
        if text:
            text, kinds = mask_credentials(text)
            found.update(kinds)
        masked.append(text)
    return masked, found


def masked_warning(found: Counter[str], where: str = "its chunks") -> str:
    """The warning naming what was masked: ``credentials masked in its chunks: AWS access
    key ID (2), private key (1) (chunk.mask_credentials)``."""
    kinds = ", ".join(
        f"{what} ({n})" for what, n in sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return f"{_SAID} {where}: {kinds} (chunk.mask_credentials)"
