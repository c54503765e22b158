"""ListObjectsV2 pages: the pattern reader agrees with the XML parser, or steps aside."""

from __future__ import annotations

from rag_ingest.s3.client import _fast_listing, _xml_listing, parse_listing

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def page(contents: list[tuple[str, str, str, str]], *, token: str | None, sep: str = "") -> bytes:
    items = "".join(
        f"<Contents>{sep}<Key>{k}</Key>{sep}<LastModified>{m}</LastModified>{sep}"
        f"<ETag>{e}</ETag>{sep}<Size>{z}</Size>{sep}<StorageClass>STANDARD</StorageClass>"
        f"{sep}</Contents>{sep}"
        for k, m, e, z in contents
    )
    tail = (
        f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>"
        if token
        else "<IsTruncated>false</IsTruncated>"
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{NS}">{sep}'
        f"<Name>b</Name><Prefix>docs/</Prefix><KeyCount>{len(contents)}</KeyCount>"
        f"<MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType>{tail}{sep}{items}"
        "</ListBucketResult>"
    ).encode()


ROWS = [
    ("docs/a+report+%282024%29.pdf", "2026-01-02T03:04:05.000Z", "&quot;abc&quot;", "10"),
    ("docs/%C3%BCber%3Dcaf%C3%A9.txt", "2026-01-02T03:04:06.000Z", "&quot;d-2&quot;", "0"),
    ("docs/x%26y.md", "2026-01-02T03:04:07.000Z", "&quot;e&quot;", "12345678901"),
    # Go's encoding/xml (SeaweedFS, MinIO) writes numeric character references.
    ("docs/cr&#x0D;lf&#10;.txt", "2026-01-02T03:04:08Z", "&#34;f-3&#34;", "7"),
]


def test_the_pattern_reader_agrees_with_the_xml_parser() -> None:
    for sep in ("", "\n  "):
        body = page(ROWS, token="1/abc&amp;def==", sep=sep)
        fast = _fast_listing(body)
        assert fast is not None, "the usual shape must take the fast path"
        assert fast == _xml_listing(body)
    assert fast.items[0] == ("docs/a report (2024).pdf", 10, '"abc"', "2026-01-02T03:04:05.000Z")
    assert fast.items[1][0] == "docs/über=café.txt"
    assert fast.items[2][:2] == ("docs/x&y.md", 12345678901)
    assert fast.items[3][:3] == ("docs/cr\rlf\n.txt", 7, '"f-3"')
    assert fast.token == "1/abc&def=="


def test_last_page_has_no_token() -> None:
    listing = parse_listing(page(ROWS[:1], token=None))
    assert listing.token is None and len(listing.items) == 1


def test_unusual_shapes_go_to_the_xml_parser() -> None:
    prefixed = page(ROWS, token=None).replace(b"<", b"<s3:").replace(b"<s3:/", b"</s3:")
    prefixed = prefixed.replace(b"<s3:?xml", b"<?xml").replace(
        f'xmlns="{NS}"'.encode(), f'xmlns:s3="{NS}"'.encode()
    )
    unencoded = page([("Table of Contents.pdf", "2026-01-01T00:00:00Z", "e", "1")], token=None)
    unencoded = unencoded.replace(b"<EncodingType>url</EncodingType>", b"")
    no_size = page(ROWS, token=None).replace(b"<Size>10</Size>", b"")
    for body, first_key in [
        (prefixed, "docs/a report (2024).pdf"),
        (unencoded, "Table of Contents.pdf"),
        (no_size, "docs/a report (2024).pdf"),
    ]:
        assert _fast_listing(body) is None
        listing = parse_listing(body)
        assert listing.items and listing.items[0][0] == first_key
