"""Credentials inside documents: masked in place in their chunks, with a warning."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rag_ingest.chunking import chunk_document, document_text, join_plans
from rag_ingest.credentials import MASKED, mask_credentials, masked_warning
from rag_ingest.parsers import ParseOptions, parse_file
from rag_ingest.parsers.base import ParsedDocument, Segment
from rag_ingest.settings import ChunkSettings
from rag_ingest.tokens import count_tokens
from tests import docs

# Made up, of each provider's form (none is a live credential).
AWS_ID = "AKIA2E0A8F3B244C9986"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY1234567890"
GITHUB = "ghp_" + "a1B2" * 9
OPENAI = "sk-proj-" + "Ab3_" * 20
OPENAI_LEGACY = "sk-" + "q7Zk" * 5 + "T3BlbkFJ" + "m2Pw" * 5
ANTHROPIC = "sk-ant-api03-" + "Zz9_" * 24
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
KEY_BODY = "\n".join(["MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDqKSRsx33mtkQe"] * 30)
PRIVATE_KEY = f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("before", "secret", "after", "what"),
    [
        ("id AKIA", AWS_ID[4:], " here", "AWS access key ID"),
        ("aws_secret_access_key = ", AWS_SECRET, "", "AWS secret access key"),
        ("AWS_SECRET_ACCESS_KEY=", AWS_SECRET, "\n", "AWS secret access key"),
        ('"SecretAccessKey": "', AWS_SECRET, '"', "AWS secret access key"),
        (
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=",
            "q7Zk" * 21 + "Ab==",
            ";EndpointSuffix=core.windows.net",
            "Azure storage key",
        ),
        (
            "https://acme.blob.core.windows.net/c/a.pdf?sv=2022-11-02&sr=b&sig=",
            "Zm9v%2BYmFy%2FbGl2ZQ%3D%3DZm9vYmFyYmF6cXV4",
            "&se=2030-01-01",
            "Azure SAS signature",
        ),
        (
            "apiKey: 'SG.",
            "q7ZkAb3_q7ZkAb3_q7ZkAb.q7ZkAb3_q7ZkAb3_q7ZkAb3_q7ZkAb3_q7ZkAb3_q7Z",
            "'",
            "SendGrid API key",
        ),
        ("token: ghp_", GITHUB[4:], " x", "GitHub token"),
        ("github_pat_", "X1y2" * 10, "", "GitHub token"),
        ("GITHUB_TOKEN=ghp_", GITHUB[4:], "\n", "GitHub token"),  # not a "token" too
        ("glpat-", "Ab1-" * 5, "", "GitLab token"),
        ("xoxb-", "123456789012-abcdefABCDEF", "", "Slack token"),
        ("https://hooks.slack.com/services/", "T0001/B0002/" + "x" * 24, "", "Slack webhook"),
        ("sk_live_", "a1" * 12, "", "Stripe key"),
        ("key=AIza", "S" * 35, "&q=1", "Google API key"),
        ("OPENAI_API_KEY=sk-proj-", OPENAI[8:], "", "OpenAI API key"),
        ("sk-", OPENAI_LEGACY[3:], "", "OpenAI API key"),
        ("sk-ant-api03-", ANTHROPIC[13:], "", "Anthropic API key"),
        ("hf_", "x1" * 17, "", "Hugging Face token"),
        ("npm_", "a1" * 18, "", "npm token"),
        ("pypi-", "AgEIcHlwaS5vcmc" + "Q" * 50, "", "PyPI token"),
        ("Bearer " + JWT[: JWT.rindex(".") + 1], JWT[JWT.rindex(".") + 1 :], "", "JSON Web Token"),
        (
            "-----BEGIN PRIVATE KEY-----",
            f"\n{KEY_BODY}\n",
            "-----END PRIVATE KEY-----",
            "private key",
        ),
        ("postgres://app:", "S3cr3t!x", "@db.internal:5432/x", "password in a URL"),
        # Settings: a value given to a name for a password, secret, token or API key.
        ('password = "', "hunter22", '"', "password"),
        ("DB_PASSWORD=", "s3cr3t!x", "\n", "password"),
        ("spring.datasource.password=", "Sup3rS", "", "password"),
        ("  password: ", "hunter2", "\n  port: 5432", "password"),
        ("'db_passwd' => '", "abc123!", "'", "password"),
        ('connect(host="db", password="', "Zx9-aa11", '")', "password"),
        ("SECRET_KEY = '", "django-insecure-4x9=q$", "'", "secret"),
        ('"client_secret": "', "Zx9-aa11", '"', "secret"),
        ("secret_key='", "limited123", "'", "secret"),
        ("access_token=", "ya29.a0AfH6SM", "&state=1", "token"),
        ('"refreshToken": "', "lucWJjEhlxZW01cXI3", '"', "token"),
        ("CI_JOB_TOKEN=", "abc123xyz", "", "token"),
        ("token: ", "45ghiukldjahdnhz", "", "token"),
        ("X-API-Key: ", "abc123def456", "", "API key"),
        ("api_key: ", "abc123def456", "\n", "API key"),  # its digits run through it
        ("apiKey: '", "k-12345678", "'", "API key"),
    ],
)
def test_each_kind_is_masked_in_place(before: str, secret: str, after: str, what: str) -> None:
    masked, found = mask_credentials(before + secret + after)
    assert found == Counter({what: 1})
    # '*' for each character (a key's line breaks kept): offsets into the document hold.
    stars = "".join(c if c == "\n" else "*" for c in secret)
    assert masked == before + stars + after
    assert mask_credentials(masked) == (masked, Counter())  # masked once only


@pytest.mark.parametrize(
    "text",
    [
        "AKIAIOSFODNN7EXAMPLE",  # AWS's own documented example
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "xAKIA2E0A8F3B244C9986",  # the tail of a longer word
        "highp_" + "a1B2" * 9,
        "task-" + "q7Zk" * 5 + "T3BlbkFJ" + "m2Pw" * 5,
        "postgres://user:password@localhost/db",  # a placeholder
        "postgres://user:<password>@localhost/db",
        "gist://username:token@id/file; http://foo:bar@myhost; smb://me:mypassword@srv/",
        "http://host:8080/a@b",  # a port, not a password
        "new URL('https://abc:xyz@example.com')",  # a documentation host
        "redis://app:S3cr3t!x@localhost:6379",
        "-----BEGIN PRIVATE KEY-----\n[encoded data, 1,653 characters]\n-----END PRIVATE KEY-----",
        "a task-force at the desk-top; see https://example.com/a:b",
        # Settings whose value is code, a reference, a placeholder, a word or a number.
        "password = os.environ['DB_PASSWORD']",
        "secret = os.urandom(16)",
        "token = self.token; api_key = config.api_key",
        "host, port, access_key, secret_key = s3_connection",
        "password=password, token=None",
        "if password == 'hunter22':",
        "password: ${DB_PASS}; secret: !vault |; token=%s; apiKey: {{ api_key }}",
        "token=YOUR_TOKEN api_key='your-api-key' password: <password> secret=********",
        "secret: /run/secrets/db; password: /etc/app/db.pw1; password_file = 'pw.txt'",
        '"password": "arn:aws:ssm:us-east-1:123456789012:parameter/db"',
        "x = token::value2;",
        "Password: must be 8 characters long. The Token= setting.",
        "token: CARD32; lastModifiedSecret: 1556311319.069; PASSWORD = 0x8249",
        '"password": "arn:aws:iam::aws:policy/IAMUserChangePassword"',
        '"LocalConsolePassword": "PassWordMustBeAtLeast6Chars."',
        "auth = token::delimiter(x); password := getpass.getpass(); password=lambda: pw",
        '__mvncomp "username= message= passphrase= password= scmVersion= $(x)" "-D"',
        # A variable: TypeScript's compiler had two "tokens" masked.
        "isJsxOpeningLikeElement(parent2) ? token : parent2,",
        "return { kind: 3 /* ObjectLiteral */, token: parent2, identifier, apiKey: keyOf };",
        # Tokens that are no credential: paging, idempotency, a model's special tokens.
        '"NextToken": "eyJNYXJrZXIiOiBudWxsfQ==", "ClientToken": "527c5358-2a1a-4b9e"',
        'page_token = "CgVhYmMxMg"; IMAGE_TOKEN = "]<]image[>["; pad_token="<|pad|>"',
        # A name under a namespace or a path.
        '"AWS::ApiGateway::ApiKey": "48205d4ffd7feba3", "AWS::Kafka::Secret": "c85175a4eb"',
    ],
)
def test_examples_placeholders_and_prose_are_kept(text: str) -> None:
    assert mask_credentials(text) == (text, Counter())


def test_many_starts_of_a_key_with_no_end_take_one_pass() -> None:
    # Each start had scanned the rest of the text, then failed: "eyJ" 20,000 times over
    # took 0.96 s, 2,000 BEGIN lines 3.3 s, growing with the square of the length. These,
    # 13-35 times as long, would take minutes (the test's time limit fails them); each
    # now takes a few hundredths of a second.
    for text in (
        "eyJ" * 700_000,
        "-----BEGIN PRIVATE KEY-----\n" * 70_000 + "A" * 100_000,
        "sk-" * 700_000 + "T3BlbkFJ",
    ):
        assert mask_credentials(text) == (text, Counter())


def _guide() -> str:
    filler = "\n\n".join(
        f"Step {i}: " + "check the deploy settings once more. " * 12 for i in range(12)
    )
    return (
        f"# Deploy\n\n{filler}\n\n## Keys\n\n"
        f"Use `{AWS_ID}` with secret_access_key: {AWS_SECRET}.\n\n"
        f"```\n{PRIVATE_KEY}\n```\n\n## After\n\n{filler}\n"
    )


def test_chunks_hold_the_masked_text_at_the_documents_offsets() -> None:
    parsed = ParsedDocument("markdown", [Segment(_guide())], parser="t")
    settings = ChunkSettings(chunk_tokens=128, overlap_tokens=16)
    plan = chunk_document(parsed, settings, {})
    joined = "".join(c.text for c in plan.chunks)
    assert len(plan.chunks) > 4
    for secret in (AWS_ID[4:], AWS_SECRET, "MIIEvwIBADANBgkq"):
        assert secret not in joined
    assert "AKIA****************" in joined and "-----BEGIN PRIVATE KEY-----" in joined
    masked_text, _ = mask_credentials(document_text(parsed))
    for chunk in plan.chunks:
        start, end = chunk.metadata["start_index"], chunk.metadata["end_index"]
        assert masked_text[start:end] == chunk.text
        assert chunk.metadata["token_count"] == count_tokens(chunk.text, settings.encoding)
    expected = "AWS access key ID (1), AWS secret access key (1), private key (1)"
    assert plan.warnings == [f"{MASKED}: {expected} (chunk.mask_credentials)"]

    kept = chunk_document(
        parsed, ChunkSettings(chunk_tokens=128, overlap_tokens=16, mask_credentials=False), {}
    )
    assert AWS_ID in "".join(c.text for c in kept.chunks) and kept.warnings == []


def test_a_document_in_parts_gets_one_warning_with_their_sums() -> None:
    settings = ChunkSettings()
    parts = [
        chunk_document(
            ParsedDocument("text", [Segment(f"part {i}: {AWS_ID} {GITHUB}")], parser="t"),
            settings,
            {},
        )
        for i in range(3)
    ]
    joined = join_plans(parts)
    assert [w for w in joined.warnings if w.startswith(MASKED)] == [
        masked_warning(Counter({"AWS access key ID": 3, "GitHub token": 3}))
    ]
    assert joined.masked == {"AWS access key ID": 3, "GitHub token": 3}


def test_a_notebooks_key_and_printed_token_are_masked(tmp_path: Path) -> None:
    path = tmp_path / "agent.ipynb"
    path.write_bytes(
        docs.notebook_bytes(
            docs.markdown_cell("# Agent\n", "CANARY-NB set-up"),
            docs.code_cell(
                f'import os\nos.environ["OPENAI_API_KEY"] = "{OPENAI}"\nprint(token)',
                {"output_type": "stream", "name": "stdout", "text": [f"{JWT}\n"]},
            ),
        )
    )
    parsed = parse_file(str(path), path.name, ParseOptions())
    plan = chunk_document(parsed, ChunkSettings(), {})
    text = "".join(c.text for c in plan.chunks)
    assert "CANARY-NB" in text and OPENAI not in text and JWT not in text
    assert "OpenAI API key (1)" in plan.warnings[-1] and "JSON Web Token (1)" in plan.warnings[-1]
