"""Which parser a file needs: by its content first, its name second."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import PurePosixPath

from rag_ingest.errors import (
    BlankDocumentError,
    CorruptDocumentError,
    DocumentError,
    EncryptedDocumentError,
    NoTextFormatError,
    UnsupportedFileTypeError,
)
from rag_ingest.parsers.base import OLE_MAGIC, ZIP_ERRORS
from rag_ingest.parsers.calendar import is_calendar
from rag_ingest.parsers.compressed import inner_name
from rag_ingest.parsers.roff import is_roff
from rag_ingest.parsers.sun_xml import SUN_KINDS, SUN_MIMETYPES
from rag_ingest.parsers.transcript import is_transcript

__all__ = [
    "CODE_LANGUAGES",
    "JSON_SUFFIXES",
    "TABLE_KINDS",
    "FileKind",
    "compressed_name",
    "detect",
    "is_pdf",
    "mailbox_kind",
    "maybe_archive",
    "no_text",
    "ole_sectors_ok",
    "secret",
]

# Extension -> language: a langchain_text_splitters.Language value where it has one (split
# on that language's syntax), else a name of our own (generic separators, but the file is
# still code and says its language).
CODE_LANGUAGES = {
    ".py": "python", ".pyi": "python",
    ".js": "js", ".mjs": "js", ".cjs": "js", ".jsx": "js",
    ".ts": "ts", ".tsx": "ts",
    ".go": "go", ".java": "java", ".kt": "kotlin", ".kts": "kotlin",
    ".rs": "rust", ".c": "c", ".h": "c", ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp",
    ".hpp": "cpp", ".hh": "cpp", ".cs": "csharp", ".rb": "ruby", ".php": "php",
    ".scala": "scala", ".swift": "swift", ".lua": "lua", ".sol": "sol", ".proto": "proto",
    ".rst": "rst", ".tex": "latex", ".adoc": "asciidoc", ".asciidoc": "asciidoc", ".org": "org",
    ".pl": "perl", ".pm": "perl", ".hs": "haskell",
    ".ex": "elixir", ".exs": "elixir", ".ps1": "powershell", ".cob": "cobol", ".vb": "visualbasic6",
    ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".sql": "sql", ".r": "r", ".jl": "julia",
    ".dart": "dart", ".tf": "hcl", ".groovy": "groovy", ".clj": "clojure", ".erl": "erlang",
    ".fs": "fsharp", ".zig": "zig", ".vue": "vue", ".svelte": "svelte",
    # Other names of the same languages: Cython, CUDA and C++ headers, ES module
    # TypeScript, Ruby's build files, PowerShell modules, F# scripts, Erlang headers,
    # ClojureScript, Gradle builds, Terraform variables, VBScript.
    ".pyw": "python", ".pyx": "python", ".pxd": "python", ".pxi": "python",
    ".cu": "cpp", ".cuh": "cpp", ".hxx": "cpp", ".ipp": "cpp", ".inl": "cpp", ".ino": "cpp",
    ".mts": "ts", ".cts": "ts", ".rake": "ruby", ".gemspec": "ruby",
    ".psm1": "powershell", ".psd1": "powershell", ".fsx": "fsharp", ".fsi": "fsharp",
    ".hrl": "erlang", ".cljs": "clojure", ".cljc": "clojure", ".gradle": "groovy",
    ".hcl": "hcl", ".tfvars": "hcl", ".vbs": "visualbasic6", ".bas": "visualbasic6",
    ".ksh": "shell",
    # Style sheets, build scripts and others a repository holds.
    ".css": "css", ".scss": "css", ".sass": "css", ".less": "css", ".cmake": "cmake",
    ".vim": "vim", ".bat": "batch", ".cmd": "batch", ".awk": "awk",
    ".f90": "fortran", ".f95": "fortran", ".f03": "fortran", ".f08": "fortran",
    ".f": "fortran", ".for": "fortran", ".f77": "fortran", ".ftn": "fortran",
    ".mm": "objective-c",  # Objective-C++
}  # fmt: skip
# ".m" is Objective-C, MATLAB (or Octave) or Mathematica: told by its first lines.
_M_LANGUAGES = (
    (re.compile(rb"^[ \t]*(?:#import|#include|@interface|@implementation|@protocol)\b", re.M),
     "objective-c"),
    (re.compile(rb"^[ \t]*(?:%|function\b|classdef\b)", re.M), "matlab"),
    (re.compile(rb"^[ \t]*(?:\(\*|BeginPackage\[)", re.M), "mathematica"),
)  # fmt: skip
# Files named for their language, with no extension.
_CODE_NAMES = {
    "dockerfile": "dockerfile", "containerfile": "dockerfile", "makefile": "make",
    "gnumakefile": "make", "jenkinsfile": "groovy", "rakefile": "ruby", "gemfile": "ruby",
    "vagrantfile": "ruby", "cmakelists.txt": "cmake", ".vimrc": "vim", "_vimrc": "vim",
}  # fmt: skip
# JSON by other names: map features, linked data, a browser's HTTP archive.
JSON_SUFFIXES = frozenset({".json", ".geojson", ".topojson", ".jsonld", ".har"})
# XML by other names: schemas and transforms, .NET projects and resources, map tracks,
# translation files.
_XML_SUFFIXES = {".xml", ".rss", ".atom", ".xsd", ".xsl", ".xslt", ".wsdl", ".csproj",
                 ".vbproj", ".fsproj", ".vcxproj", ".props", ".targets", ".nuspec", ".resx",
                 ".xaml", ".kml", ".gpx", ".xlf", ".xliff"}  # fmt: skip
_TEXT = {".txt", ".text", ".log", *JSON_SUFFIXES, ".jsonl", ".ndjson", ".yaml", ".yml", ".toml",
         ".ini", ".cfg", *_XML_SUFFIXES, ".env", ".conf", ".properties"}  # fmt: skip
# Text nested by indentation: chunked at its shallowest keys or elements first.
_TEXT_LANGUAGES = {
    **dict.fromkeys(JSON_SUFFIXES, "json"),
    **dict.fromkeys(_XML_SUFFIXES, "xml"),
    ".yaml": "yaml", ".yml": "yaml",
}  # fmt: skip
# Plain text by its conventional name, with no extension: a project's own documents.
_TEXT_NAMES = {"readme", "license", "licence", "copying", "authors", "contributors",
               "changelog", "changes", "news", "notice", "install", "todo", "thanks",
               "maintainers", "history", "copyright"}  # fmt: skip
_BY_EXTENSION = {
    ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx",
    # Macro-enabled, template and slide-show variants: the same parts, typed otherwise.
    ".docm": "docx", ".dotx": "docx", ".dotm": "docx", ".pptm": "pptx", ".ppsx": "pptx",
    ".ppsm": "pptx", ".potx": "pptx", ".potm": "pptx", ".xlsm": "xlsx", ".xltx": "xlsx",
    ".xltm": "xlsx",
    ".vsdx": "vsdx", ".vsdm": "vsdx", ".xps": "xps", ".oxps": "xps", ".svg": "svg", ".svgz": "svg",
    ".mobi": "mobi", ".azw": "mobi", ".fb2": "fb2",
    ".uot": "uof", ".uos": "uof", ".uop": "uof",
    ".mht": "mhtml", ".mhtml": "mhtml",
    ".html": "html", ".htm": "html", ".xhtml": "html", ".md": "markdown", ".markdown": "markdown",
    ".mdx": "markdown",
    ".ipynb": "notebook", ".eml": "email", ".emlx": "emlx", ".csv": "csv", ".tsv": "csv",
    ".rtf": "rtf",
    ".xls": "xls", ".xlsb": "xlsb", ".ods": "ods", ".odt": "odt", ".odp": "odp", ".odg": "odg",
    ".docbook": "docbook", ".dbk": "docbook", ".page": "mallard",
    ".epub": "epub", ".fodt": "fodt", ".fods": "fods", ".fodp": "fodp", ".fodg": "fodg",
    ".sxw": "sxw", ".stw": "sxw", ".sxg": "sxw", ".sxc": "sxc", ".stc": "sxc", ".sxi": "sxi",
    ".sti": "sxi", ".sxd": "sxd", ".std": "sxd",
    ".vtt": "transcript", ".srt": "transcript", ".sbv": "transcript",
    ".ttml": "transcript", ".dfxp": "transcript", ".ass": "transcript", ".ssa": "transcript",
    ".ics": "calendar", ".ical": "calendar", ".ifb": "calendar", ".vcf": "calendar",
    ".vcard": "calendar", ".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow",
    ".avro": "avro", ".orc": "orc",
    ".zip": "archive", ".tar": "archive", ".mbox": "mbox", ".mbx": "mbox",
    # Word and PowerPoint 97-2003 (templates, .dot and .pot, are known by content: those
    # names are Graphviz and gettext files far more often).
    ".doc": "doc", ".ppt": "ppt", ".pps": "ppt",
}  # fmt: skip
# A message's header lines, up to the blank line that ends them (continuations folded in).
_HEADER_BLOCK = re.compile(rb"\A((?:[!-9;-~]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*){3,})\r?\n")
_HEADER_NAME = re.compile(rb"^([!-9;-~]+):", re.MULTILINE)
# A message names its sender or its route, and its date, subject or recipient.
_SENT = {b"from", b"received", b"return-path", b"delivered-to", b"message-id"}
_ABOUT = {b"date", b"subject", b"to", b"message-id", b"received"}


def _is_message(head: bytes) -> bool:
    """Whether a file's first bytes are an e-mail message's header (three header lines
    or more, then a blank line; a sender or a route, and a date, subject or recipient):
    a Maildir file or an exported message, with no .eml to say so."""
    block = _HEADER_BLOCK.match(head)
    if block is None:
        return False
    names = {n.lower() for n in _HEADER_NAME.findall(block[1])}
    return bool(names & _SENT) and bool(names & _ABOUT)


# A mailbox's first message: its "From " envelope line, then a header line.
_MBOX_START = re.compile(rb"From \S+ [^\r\n]*\d\d:\d\d[^\r\n]*\r?\n[!-9;-~]+:")
_OOXML = {"word/": "docx", "ppt/": "pptx", "xl/": "xlsx", "visio/": "vsdx"}
# The "mimetype" member an OpenDocument file or an EPUB starts with (templates as well).
_MIMETYPES = {
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.spreadsheet-template": "ods",
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.text-template": "odt",
    # A master document (its chapters' text kept in it) and a web page template: text.
    b"application/vnd.oasis.opendocument.text-master": "odt",
    b"application/vnd.oasis.opendocument.text-master-template": "odt",
    b"application/vnd.oasis.opendocument.text-web": "odt",
    b"application/vnd.oasis.opendocument.presentation": "odp",
    b"application/vnd.oasis.opendocument.presentation-template": "odp",
    b"application/vnd.oasis.opendocument.graphics": "odg",
    b"application/vnd.oasis.opendocument.graphics-template": "odg",
    b"application/epub+zip": "epub",
    **SUN_MIMETYPES,  # OpenOffice.org 1.x
}
# An OpenDocument manifest's entries; the document's own is the one for path "/".
_MANIFEST_ENTRY = re.compile(rb"<manifest:file-entry\b[^>]*>")
_MEDIA_TYPE = re.compile(rb'manifest:media-type="([^"]+)"')
# Data files read as tables of their rows (parsers/data.py).
TABLE_KINDS = ("parquet", "arrow", "avro", "orc")
# Binary formats by name: bytes that are not the format are text, or refused.
_BINARY_KINDS = (
    "pdf", "docx", "pptx", "xlsx", "doc", "ppt", "xls", "xlsb", "ods", "odt", "odp", "odg",
    "epub", "vsdx", "xps", "mobi", "archive", *SUN_KINDS, *TABLE_KINDS,
)  # fmt: skip
# Those of them that are zip packages.
_ZIP_KINDS = frozenset(
    {"docx", "pptx", "xlsx", "xlsb", "ods", "odt", "odp", "odg", "epub", "vsdx", "xps", "archive",
     *SUN_KINDS}
)  # fmt: skip
# Formats with no text to index, by name: a walk or a prefix meets them in any docs tree
# or bucket (logos, screenshots, videos, release archives) and skips them unread.
_KEYS = (".pem", ".crt", ".cer", ".der", ".csr", ".p7b", ".p12", ".pfx", ".jks", ".keystore",
         ".kdbx")  # fmt: skip
_NO_TEXT = {
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp",
                     ".ico", ".heic", ".avif", ".emf", ".wmf", ".emz", ".wmz"),
                    "an image"),
    **dict.fromkeys((".mp3", ".wav", ".flac", ".ogg", ".m4a", ".aac", ".opus"), "audio"),
    **dict.fromkeys((".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"), "a video"),
    # Zip and tar archives are read (parsers/archive.py); these formats are not.
    **dict.fromkeys((".7z", ".rar", ".jar", ".whl", ".apk", ".cab"), "an archive"),
    **dict.fromkeys((".exe", ".dll", ".so", ".dylib", ".o", ".a", ".class", ".pyc",
                     ".pyo", ".pyd", ".wasm", ".bin"), "a binary"),
    # Compound files that are no document: a walk had failed on CMake's Visual Studio
    # macro templates ("a compound (OLE) file holding no Word ... document").
    **dict.fromkeys((".msi", ".msp", ".msm", ".vsmacros"), "an installer or a binary"),
    **dict.fromkeys((".ttf", ".otf", ".woff", ".woff2", ".eot"), "a font"),
    **dict.fromkeys((".sqlite", ".sqlite3", ".db", ".pkl", ".npy", ".npz", ".h5", ".hdf5"),
                    "a data file"),
    **dict.fromkeys((".iso", ".dmg", ".vmdk", ".qcow2"), "a disk image"),
    # A database's front end (its forms, queries, and a link to the data or an embedded
    # engine's files): read as an archive, it was its settings' XML.
    ".odb": "a LibreOffice Base database (export its tables as CSV)",
    # Thunderbird's index beside each mailbox (Mork, text): read as text, its row ids
    # and hex became chunks of noise.
    ".msf": "a mail client's index",
    # Outlook's mail stores, not read here: export the mail as .msg, .eml or mbox.
    **dict.fromkeys((".pst", ".ost"), "an Outlook data file: export its mail as .msg or mbox"),
    # A program that draws its pages: read as text, a 1.7 MB manual became 19,839 chunks.
    **dict.fromkeys((".ps", ".eps"), "PostScript (convert it to PDF)"),
    # Secrets, never to be put in an index: read as text, a private key's armour lines
    # became a chunk of their own (its base64 is left out as encoded data).
    **dict.fromkeys(_KEYS, "a key, certificate or keystore"),
    ".key": "a private key, or a Keynote presentation (export it as PPTX or PDF)",
    # Apple's iWork files: protobuf in snappy, not read here.
    **dict.fromkeys((".pages", ".numbers"),
                    "an Apple iWork document (export it as DOCX, XLSX or PDF)"),
    ".tfstate": "Terraform state, which holds secrets",
}  # fmt: skip
# Documents of formats with no reader here, by name (their text is there, unread): said
# as such and failed, to be converted, not skipped as if they held no text.
_TEXTS, _SHEETS = "DOCX, ODT or PDF", "XLSX, ODS or CSV"
_UNREAD_DOCUMENTS = {
    ".lwp": ("a Lotus Word Pro document", _TEXTS),
    **dict.fromkeys((".wpd", ".wp", ".wp5", ".wp6"), ("a WordPerfect document", _TEXTS)),
    **dict.fromkeys((".123", ".wk1", ".wk3", ".wk4"), ("a Lotus 1-2-3 spreadsheet", _SHEETS)),
    **dict.fromkeys((".qpw", ".wb1", ".wb2", ".wb3"), ("a Quattro Pro spreadsheet", _SHEETS)),
}
# A bundle's source map (app.min.js.map): its mappings are noise and its sources the
# code beside it, read on their own; read as text, source maps were 26% of the chunks of
# a node_modules of eight packages, 39% of its tokens.
_SOURCE_MAP = re.compile(r"\.(?:[cm]?js|jsx|[cm]?ts|tsx|css|scss|sass|less)\.map$")
_MAP = "a source map (the code it maps is read on its own)"
# Minified code, named so (jquery.min.js, bootstrap.min.css): one line of a bundle, the
# same code as its source again where the package ships both (in that node_modules, 11%
# of the chunks left and 13% of the tokens; Django ships jQuery and Select2 both ways).
_MINIFIED = re.compile(r"[.-]min\.(?:[cm]?js|css)$")
_MAP_CONTENT = re.compile(rb'\A\s*\{.{0,512}?"(?:version"\s*:\s*3|mappings"\s*:)', re.DOTALL)
# The same, by a file's whole name: SSH's private keys, stored passwords.
_NO_TEXT_NAMES = {
    **dict.fromkeys(("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk",
                     "id_ed25519_sk"), "an SSH private key"),
    **dict.fromkeys((".netrc", "_netrc", ".pgpass", ".htpasswd", ".git-credentials",
                     ".pypirc"), "stored passwords"),
    # s3cmd's, gsutil's, npm's and Docker's keys and tokens, gcloud's refresh token.
    **dict.fromkeys((".s3cfg", ".boto", ".npmrc", ".dockercfg",
                     "application_default_credentials.json"), "stored credentials"),
    ".envrc": "an environment file, which may hold secrets",
    "terraform.tfstate.backup": "Terraform state, which holds secrets",
}  # fmt: skip
# The same, by a file's name and its folder's.
_NO_TEXT_PATHS = {
    (".aws", "credentials"): "stored credentials",
    (".docker", "config.json"): "stored credentials",
}
# A file that opens with a key's or a certificate's PEM armour (OpenSSL's, OpenSSH's,
# PGP's): read as text, its armour lines had been a chunk.
_PEM = re.compile(
    rb"\A\s*-----BEGIN ((?:[A-Z0-9]+ )*(?:PRIVATE KEY|PUBLIC KEY|CERTIFICATE|CERTIFICATE "
    rb"REQUEST|X509 CRL|PKCS7|KEY BLOCK|PARAMETERS))-----"
)
# A dotenv file (".env", ".env.production", "db.env" as Docker Compose's env_file
# names it) holds an app's keys and passwords; its template (".env.example") is read.
_ENV_FILE = re.compile(r"^\.env(?:\.[^/]*)?$|\.env$")
_ENV_TEMPLATE = re.compile(r"example|sample|template|dist|default|tmpl|tpl")


# Images OCR reads (Pillow opens them), when it is on for images; their first bytes.
_RASTER = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
_RASTER_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def compressed_name(name: str) -> bool:
    """Whether a file's name says it is compressed (``.gz``, ``.bz2``, ``.xz``,
    ``.zst``): one whose content is not such a stream is damaged, not a format to skip."""
    return inner_name(name) != name


def maybe_archive(name: str) -> bool:
    """Whether a zip by this name may be an archive of files, not a document in zip form
    (a DOCX, an ODT, an EPUB: their names say so)."""
    return _BY_EXTENSION.get(PurePosixPath(name).suffix.lower(), "archive") == "archive"


def no_text(name: str, images: bool = False) -> str | None:
    """What a file's name says it is, when that is a format with no text to index
    (images, audio, video, archives, binaries, fonts, databases); else None. A
    compressed file (``.gz``, ``.bz2``, ``.xz``) is judged by the file inside.
    ``images``: images are read by OCR, so a PNG, JPEG, TIFF... is not such a format."""
    inner = PurePosixPath(inner_name(name))
    if (what := _secret(inner)) is not None:
        return f"{what} ({inner.name})"
    suffix = inner.suffix.lower()
    if images and suffix in _RASTER:
        return None
    if _SOURCE_MAP.search(inner.name.lower()):
        return f"{_MAP} ({suffix})"
    if _MINIFIED.search(inner.name.lower()):
        return f"minified code (its source, where shipped, is read on its own) ({suffix})"
    what = _NO_TEXT.get(suffix)
    return f"{what} ({suffix})" if what else None


def secret(name: str) -> str | None:
    """What a file's name, with the folders above it, says it is when that is a file of
    secrets (as :func:`no_text` says it); else None."""
    inner = PurePosixPath(inner_name(name))
    what = _secret(inner)
    return f"{what} ({inner.name})" if what is not None else None


def holds_secrets(name: str) -> bool:
    """Whether a file's name says it holds secrets: a key, a keystore, stored passwords,
    Terraform state (not read, as :func:`no_text` says, and worth a look where found)."""
    suffix = PurePosixPath(inner_name(name)).suffix.lower()
    return secret(name) is not None or suffix in (*_KEYS, ".key", ".tfstate")


def _secret(path: PurePosixPath) -> str | None:
    """What a file's name (and its folder's) says it is, when that is a file of secrets."""
    name = path.name.lower()
    what = _NO_TEXT_NAMES.get(name) or _NO_TEXT_PATHS.get((path.parent.name.lower(), name))
    if what is None and _ENV_FILE.search(name) and not _ENV_TEMPLATE.search(name):
        what = "an environment file, which may hold secrets"
    return what


def needs_ocr(name: str) -> bool:
    """Whether a file's name says it is an image: text that only OCR reads."""
    return no_text(name) is not None and no_text(name, images=True) is None


_IMAGE = "images are read only by OCR (parse.ocr and parse.ocr_images, extra 'ocr')"
# Formats whose first bytes are unmistakable, refused by name rather than as "binary".
_REFUSED = (
    *((magic, f"a {kind} image: {_IMAGE}") for magic, kind in _RASTER_MAGIC),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"%!PS", "PostScript (convert it to PDF)"),
)


class FileKind:
    """A detected type: ``kind`` (pdf, docx, ..., text, code) and a code ``language``.
    ``guessed``: neither the name nor the bytes said what it is (tried as text)."""

    __slots__ = ("guessed", "kind", "language", "note")

    def __init__(
        self,
        kind: str,
        language: str | None = None,
        note: str | None = None,
        guessed: bool = False,
    ) -> None:
        self.kind = kind
        self.language = language
        self.note = note
        self.guessed = guessed

    def __repr__(self) -> str:
        return f"FileKind({self.kind!r}, language={self.language!r})"


# Word for Windows 1.x, 2.0 and 6.0 documents saved bare, not in a compound file (their
# first two bytes, wIdent): LibreOffice's tests hold ten, refused as misnamed before.
OLD_WORD_MARKS = (b"\x9b\xa5", b"\xdb\xa5", b"\xdc\xa5")
OLD_WORD = "a Word document older than Word 97, outside the Word 97-2003 format: save it as DOCX"


def _zip_kind(path: str) -> str | None:
    """docx, pptx, xlsx, xlsb, vsdx, xps, ods, odt, odp or epub, by the archive's members."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            # An OpenDocument file or an EPUB names its kind in its first member; when
            # that is lost or damaged, in its manifest, or by its container (a damaged
            # copy of one had been refused as "a zip archive, not a .odt file").
            if "mimetype" in names:
                with archive.open("mimetype") as member:
                    kind = _MIMETYPES.get(member.read(100).strip())
                    if kind:
                        return kind
            if "content.xml" in names and "META-INF/manifest.xml" in names:
                with archive.open("META-INF/manifest.xml") as member:
                    manifest = member.read(65536)
                for entry in _MANIFEST_ENTRY.findall(manifest):
                    own = b'manifest:full-path="/"' in entry
                    found = _MEDIA_TYPE.search(entry) if own else None
                    if found and (kind := _MIMETYPES.get(found.group(1))):
                        return kind
            if "META-INF/container.xml" in names and any(n.endswith(".opf") for n in names):
                return "epub"
    # RuntimeError: an encrypted member; NotImplementedError: a version zipfile refuses.
    except (OSError, RuntimeError, *ZIP_ERRORS):
        return None
    # An XPS or OpenXPS document's pages; Windows may write one in pieces, "1.fpage/[0].piece".
    # It, and a Visio drawing, is read (by MuPDF, by parsers/visio.py) without the
    # package's [Content_Types].xml: a copy that lost it had been refused as a zip.
    if any(".fpage" in n.lower() for n in names) and (
        "[Content_Types].xml" in names or any(n.lower().endswith(".fdseq") for n in names)
    ):
        return "xps"
    if "visio/document.xml" in names:
        return "vsdx"
    if "[Content_Types].xml" not in names:
        return None
    if "xl/workbook.bin" in names:
        return "xlsb"  # a binary workbook: Excel's parts, not XML
    for prefix, kind in _OOXML.items():
        if any(n.startswith(prefix) for n in names):
            return kind
    return None


def _lost_part(path: str, kind: str) -> str | None:
    """Why a zip holding a ``kind`` document's parts (an OOXML file's main part, an
    OpenDocument file's own, an EPUB's package) was not known as one; None when it
    holds none."""
    main = {v: k for k, v in _OOXML.items()}.get(kind)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError):
        return None
    if any("PK\x01\x02" in n for n in names):
        # A name's length damaged: it runs on into the next entry's signature.
        return "its zip directory is damaged"
    if main is not None and any(n.startswith(main) for n in names):
        return "its [Content_Types].xml is missing or damaged"
    own = {"mimetype", "content.xml", "META-INF/manifest.xml"} & set(names)
    if kind in ("odt", "ods", "odp", "odg") and own:
        return "the parts saying what it is (its mimetype, its manifest) are missing or damaged"
    if kind == "epub" and (
        own or "META-INF/container.xml" in names or any(n.endswith(".opf") for n in names)
    ):
        return "the parts saying what it is (its mimetype, its container) are missing or damaged"
    if kind == "xps" and any(n.lower().endswith((".fdseq", ".fdoc")) for n in names):
        return "its pages are missing"
    return None


def _damaged_pdf(path: str, head: bytes) -> bool:
    """Whether a file without a PDF's header is a PDF all the same, its header damaged:
    "PDF-" near its start, or "%%EOF" near its end."""
    if b"PDF-" in head[:16]:
        return True
    with open(path, "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - 1024))
        return b"%%EOF" in f.read()


def _damaged_ole(head: bytes) -> bool:
    """Whether a file without a compound (OLE) file's signature is one all the same, its
    signature damaged: all but two of its bytes, or the header's byte-order mark and
    sector size after it (a fuzzed .doc's fifth byte had made it "not a .doc")."""
    near = sum(a == b for a, b in zip(head[:8], OLE_MAGIC, strict=False)) >= 6
    return near or (head[28:30] == b"\xfe\xff" and head[30:32] in (b"\x09\x00", b"\x0c\x00"))


def _zip_directory(path: str) -> bool:
    """Whether a zip's central directory can be read."""
    try:
        with zipfile.ZipFile(path):
            return True
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError):
        return False


def ole_sectors_ok(header: bytes) -> bool:
    """Whether a compound file's header gives a sector size MS-CFB allows (512 or 4096
    bytes): a damaged one (a shift of 38) had made readers try to allocate 1 TiB."""
    return int.from_bytes(header[30:32], "little") in (9, 12)


_OLE_LAST_SECTOR = 0xFFFFFFFA  # past it: the end of a chain, free, or a FAT sector


def _ole_directory(path: str, sectors: int = 8) -> bytes:
    """The first ``sectors`` sectors of a compound (OLE) file's directory (its streams'
    names), followed along their chain in the FAT: a directory that grew after the
    file's streams (a Word template's: sectors 17, 18, 31, 47) is not in one run."""
    try:
        with open(path, "rb") as f:
            header = f.read(512)
            if not ole_sectors_ok(header):
                return b""
            size = 1 << int.from_bytes(header[30:32], "little")
            per_fat_sector = size // 4
            # The header lists the first 109 FAT sectors: enough for a 6.8 MB file's
            # directory chain (with 512-byte sectors); past them, the chain is not followed.
            fat = [int.from_bytes(header[at : at + 4], "little") for at in range(76, 512, 4)]
            n, read = int.from_bytes(header[48:52], "little"), []
            for _ in range(sectors):
                f.seek((n + 1) * size)  # sector n starts after the header's sector
                read.append(f.read(size))
                where = n // per_fat_sector
                if where >= len(fat) or fat[where] >= _OLE_LAST_SECTOR:
                    break
                f.seek((fat[where] + 1) * size + n % per_fat_sector * 4)
                n = int.from_bytes(f.read(4).ljust(4, b"\xff"), "little")
                if n >= _OLE_LAST_SECTOR:
                    break
            return b"".join(read)
    except (OSError, ValueError, OverflowError):
        return b""


# A compound file's main stream, by name: "Workbook" is BIFF8, "Book" BIFF5.
_OLE_STREAMS = {
    "WordDocument": "doc",
    "PowerPoint Document": "ppt",
    "Workbook": "xls",
    "Book": "xls",
}
# Compound files in formats not read here, by their content's stream: StarOffice 3-5's
# documents (.sdw, .sdc, .sdd, .sda; LibreOffice opens them, through libstaroffice) and
# PowerPoint 4.0's presentations (PowerPoint 95's and later's stream is "PowerPoint
# Document"). Their text is there, unread.
_UNREAD_OLE = {
    "StarWriterDocument": ("a StarWriter document (StarOffice 3-5)", _TEXTS),
    "StarCalcDocument": ("a StarCalc spreadsheet (StarOffice 3-5)", _SHEETS),
    "StarDrawDocument3": ("a StarDraw or StarImpress document (StarOffice 3-5)", "ODP or PDF"),
    "PP40": ("a PowerPoint 4.0 presentation, older than PowerPoint 97", "PPTX or PDF"),
}


def _not_read(name: str, unread: tuple[str, str]) -> UnsupportedFileTypeError:
    """The refusal of a document in a format with no reader here (see
    ``_UNREAD_DOCUMENTS``, ``_UNREAD_OLE``), naming it and what to save it as."""
    what, formats = unread
    return UnsupportedFileTypeError(f"{name}: {what}, a format not read here: save it as {formats}")


def _ole_top_names(directory: bytes) -> set[str]:
    """The names of the compound file's top-level entries found in ``directory`` (128-byte
    entries: the root's child, then a tree by left and right siblings). An embedded
    object's streams sit under a storage of their own, not at the top: a workbook
    holding a Word document is still a workbook."""
    names: set[str] = set()
    count = len(directory) // 128
    if count == 0:
        return names
    todo, seen = [int.from_bytes(directory[76:80], "little")], set()
    while todo:
        n = todo.pop()
        if n >= count or n in seen:
            continue  # no entry, or one past what was read
        seen.add(n)
        entry = directory[n * 128 : (n + 1) * 128]
        length = min(int.from_bytes(entry[64:66], "little"), 64)
        names.add(entry[: max(length - 2, 0)].decode("utf-16-le", "replace"))
        todo += (int.from_bytes(entry[68:72], "little"), int.from_bytes(entry[72:76], "little"))
    return names


def _ole_kind(path: str) -> str:
    """``encrypted`` (how Office saves a password-protected DOCX, XLSX or PPTX), ``doc``,
    ``ppt`` or ``xls`` (Word, PowerPoint or Excel 97-2003), ``msg`` (an Outlook message),
    else ``ole`` (another program's compound file: Visio, Publisher, an installer)."""
    from rag_ingest.parsers.outlook import is_msg_directory

    directory = _ole_directory(path)
    if is_msg_directory(directory):
        return "msg"
    if "EncryptedPackage".encode("utf-16-le") in directory:
        return "encrypted"
    top = _ole_top_names(directory)
    return next((kind for stream, kind in _OLE_STREAMS.items() if stream in top), "ole")


def mailbox_kind(path: str, name: str) -> FileKind | None:
    """The file's kind when it is a mailbox (its note says when its name does not), else
    None; a file not opening with a ``From`` line is passed over without reading more."""
    with open(path, "rb") as f:
        if f.read(5) != b"From ":
            return None
    try:
        kind = detect(path, name)
    except DocumentError:
        return None  # its parse says why
    return kind if kind.kind == "mbox" else None


# A PDF's header: "%PDF-" and its version's first digit.
_PDF_HEADER = re.compile(rb"%PDF-\d")
# What a file's name may say that a PDF's header further down does not overrule: a text
# or code file that names the header (a PDF library's module, a page on the format).
_TEXT_KINDS = frozenset(
    {"text", "code", "markdown", "csv", "html", "calendar", "transcript", "svg", "docbook",
     "mallard", "notebook", "mbox", "rtf"}
)  # fmt: skip


def is_pdf(head: bytes, text_named: bool = False) -> bool:
    """Whether a file's first bytes (1 KiB is enough) are a PDF's: its header at the
    start, or at the start of a line after a little junk readers skip (text: a mail or
    HTTP header). Not after binary: a Windows metafile (Office's icons) holding a PDF at
    byte 164 had been read as a damaged PDF. Not within a line, nor, for a file named as
    text or code (``text_named``), anywhere but at its start: a Python module testing
    ``data.startswith(b"%PDF-")`` near its top had failed as "not a readable PDF"."""
    found = _PDF_HEADER.search(head, 0, 1024 + 5)  # the header starts in the first KiB
    if found is None:
        return False
    before = head[: found.start()]
    if not before.lstrip(b"\xef\xbb\xbf \t\r\n"):
        return True  # at its start, after a BOM or blank lines
    return not text_named and b"\x00" not in before and before.endswith((b"\n", b"\r"))


def _ends_orc(path: str) -> bool:
    """Whether a file ends as an ORC file does: its postscript's magic (field 8000, 3
    bytes: "ORC"), then the postscript's length."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < 16:
            return False
        f.seek(-8, os.SEEK_END)
        return f.read(7) == b"\x82\xf4\x03\x03ORC"


# A FictionBook's root, after its XML declaration (a BOM, a comment, space).
_FICTIONBOOK = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<FictionBook\b", re.S
)


# An XML document's root element's start tag, past its prolog (a BOM, its declaration
# and other processing instructions, comments, its DOCTYPE): the element named and its
# attributes. What a document holds further down (an XSLT stylesheet's template for an
# Excel workbook) does not make it that format.
_ROOT = re.compile(
    rb"(?:\xef\xbb\xbf)?(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)*"
    rb"<([\w.-]+:)?([\w.-]+)(\s[^>]*)?/?>",
    re.S,
)
_XMLNS = re.compile(rb'\sxmlns(?::[\w.-]+)?\s*=\s*["\']([^"\']+)["\']')
# Formats in XML, by their root's name and namespace: Excel 2003 XML and Gnumeric
# workbooks, Word 2003 XML documents, Flat OPC packages (Word's "Word XML Document";
# which kind by Office's processing instruction, else its parts' names), flat
# OpenDocument files (which kind by their mimetype) and DocBook 5.
_XML_ROOTS = {
    (b"Workbook", b"urn:schemas-microsoft-com:office:spreadsheet"): "spreadsheetml",
    (b"Workbook", b"http://www.gnumeric.org/v10.dtd"): "gnumeric",
    (b"wordDocument", b"http://schemas.microsoft.com/office/word/2003/wordml"): "wordml",
    (b"package", b"http://schemas.microsoft.com/office/2006/xmlPackage"): "opc",
    (b"document", b"urn:oasis:names:tc:opendocument:xmlns:office:1.0"): "flat",
    (b"UOF", b"http://schemas.uof.org/cn/2003/uof"): "uof",
    # XHTML opening with an XML declaration, under any name: Tesseract's hOCR output
    # (.hocr) had been read as text, its markup and all.
    (b"html", b"http://www.w3.org/1999/xhtml"): "html",
}
_DOCBOOK_NS = b"http://docbook.org/ns/docbook"
_MALLARD_NS = b"http://projectmallard.org/1.0/"  # GNOME's help pages
# DocBook 4.x: by its DOCTYPE (OASIS's DTD, or KDE's variant of it).
_DOCBOOK_DOCTYPE = re.compile(rb'<!DOCTYPE\s+[\w.-]+\s+PUBLIC\s+"-//(?:OASIS|KDE)//DTD DocBook')
_OPC_PROGID = {b"Word.Document": "docx-xml", b"PowerPoint.Show": "pptx-xml"}
_OPC_PROGID_PI = re.compile(rb'<\?mso-application\s+progid="([\w.]+)"\?>')
_OPC_PART = re.compile(rb'name="/(word|ppt)/')
_FLAT_MIMETYPE = re.compile(rb"\s[\w.-]+:mimetype=[\"']([^\"']+)[\"']")
# Formats in XML: named .xml, they are what the name says.
_XML_KINDS = frozenset(
    {"fb2", "fodt", "fods", "fodp", "fodg", "spreadsheetml", "wordml", "docx-xml", "pptx-xml",
     "docbook", "mallard", "gnumeric", "uof"}
)  # fmt: skip


def _xml_kind(head: bytes) -> str | None:
    """A format in XML, by the document's root element (its name and namespace)."""
    root = _ROOT.match(head)
    if root is None:
        return None
    attributes = root[3] or b""
    namespaces = _XMLNS.findall(attributes)
    if _DOCBOOK_DOCTYPE.search(head, 0, root.start(2)) or _DOCBOOK_NS in namespaces:
        return "docbook"
    if root[2] == b"page" and _MALLARD_NS in namespaces:
        return "mallard"
    kind = next((k for ns in namespaces if (k := _XML_ROOTS.get((root[2], ns)))), None)
    if kind == "flat":
        found = _FLAT_MIMETYPE.search(attributes)
        package = _MIMETYPES.get(found[1]) if found else None
        return f"f{package}" if package in ("odt", "ods", "odp", "odg") else None
    if kind == "opc":
        progid = _OPC_PROGID_PI.search(head, 0, root.start(2))
        if progid is not None and progid[1] in _OPC_PROGID:
            return _OPC_PROGID[progid[1]]
        part = _OPC_PART.search(head)
        return None if part is None else {b"word": "docx-xml", b"ppt": "pptx-xml"}[part[1]]
    return kind


def _content_kind(path: str, head: bytes, images: bool, by_name: str | None) -> str | None:
    """What the bytes say, when they say it clearly (``by_name``: what the name says)."""
    if is_pdf(head, text_named=by_name in _TEXT_KINDS):
        return "pdf"
    if _FICTIONBOOK.match(head):
        return "fb2"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and (xml := _xml_kind(head)):
        return xml
    if head[60:68] == b"BOOKMOBI":
        return "mobi"  # a Kindle e-book (a Palm database of type BOOK, creator MOBI)
    webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if images and (webp or any(head.startswith(magic) for magic, _ in _RASTER_MAGIC)):
        return "image"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path) or "archive"
    if head.startswith(OLE_MAGIC):
        return _ole_kind(path)  # a compound file: legacy Office, or an Outlook message
    for magic, what in _REFUSED:
        if head.startswith(magic):
            raise UnsupportedFileTypeError(what)
    if webp:
        raise UnsupportedFileTypeError(f"a WebP image: {_IMAGE}")
    if head[257:262] == b"ustar":
        return "archive"  # a tar archive (POSIX or GNU headers)
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1"):
        return "arrow"  # an Arrow IPC file, Feather v2 (a stream has no mark to know)
    if head.startswith(b"Obj\x01"):
        return "avro"
    if head.startswith(b"ORC") and _ends_orc(path):
        return "orc"  # a text may begin "ORC" too: the file's postscript says it
    if head.startswith(b"\x78\x9f\x3e\x22"):
        return "tnef"  # Outlook's winmail.dat
    if is_transcript(head):
        return "transcript"  # WebVTT, SubRip, SBV, Advanced SubStation or TTML
    if is_calendar(head):
        return "calendar"  # iCalendar or vCard
    if is_roff(head):
        return "man"  # a manual page: ls.1, or ls.1.gz decompressed
    lowered = head.lstrip()[:512].lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "html"
    if _MBOX_START.match(head):
        return "mbox"  # Thunderbird's 'Inbox' has no extension
    return None


def detect(path: str, name: str, images: bool = False) -> FileKind:
    """Route a file by content, then by extension; refuse what matches neither.
    ``images``: images are read by OCR (kind ``image``), not refused."""
    if (secret := _secret(PurePosixPath(name))) is not None:
        # Before its name's type: a .env or a config.json is text by its extension.
        raise NoTextFormatError(f"{name}: {secret} ({PurePosixPath(name).name}): no text to index")
    with open(path, "rb") as f:
        head = f.read(8192)
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".map" and _MAP_CONTENT.match(head):  # by its content: bundle.map
        raise NoTextFormatError(f"{name}: {_MAP}: no text to index")
    language = CODE_LANGUAGES.get(suffix) or _CODE_NAMES.get(PurePosixPath(name).name.lower())
    if suffix == ".m":
        language = next((lang for found, lang in _M_LANGUAGES if found.search(head)), None)
    by_name = _BY_EXTENSION.get(suffix)
    if by_name is None and language:
        by_name = "code"
    pem = _PEM.match(head) if by_name in (None, "text") and no_text(name) is None else None
    if pem is not None:
        # A key or certificate by content, whatever its name: /etc/ssl/certs/3bde41ac.0,
        # a private key saved as key.txt. Read as text, its armour lines were a chunk.
        what = pem[1].decode("ascii").lower()
        raise NoTextFormatError(f"{name}: a key or certificate ({what}): no text to index")
    # By its name's first word too: README.Debian, LICENSE-APACHE, COPYING.LIB, NEWS.old.
    named = re.split(r"[.\-_]", PurePosixPath(name).name.lower(), maxsplit=1)[0]
    if by_name is None and (suffix in _TEXT or (named in _TEXT_NAMES and suffix not in _NO_TEXT)):
        by_name = "text"
    if by_name is None and images and suffix in _RASTER:
        by_name = "image"
    try:
        by_content = _content_kind(path, head, images, by_name)
    except UnsupportedFileTypeError as exc:
        # A PNG, an ELF or a database: a format with no text, unless the name claims one
        # (notes.txt holding a gzip stream is a mistake to report, not a file to pass over).
        if by_name is None and compressed_name(name):
            # A gzip stream of an unknown method: damaged, not a format to skip.
            raise CorruptDocumentError(f"{name}: {exc} that cannot be read: damaged?") from None
        if by_name is None:
            raise NoTextFormatError(f"{name}: {exc}: no text to index") from None
        if by_name == "code" and head.startswith(b"\x7fELF"):
            # Compiled code under a source file's extension: Guile's objects are .go
            # (91 of them had failed in a package of card games).
            raise NoTextFormatError(f"{name}: {exc}, compiled code: no text to index") from None
        raise UnsupportedFileTypeError(f"{name}: {exc}") from None

    if by_content == "encrypted":
        raise EncryptedDocumentError(
            f"{name}: password-protected (an encrypted Office file): remove the password, "
            "or save a copy without one"
        )
    if by_content == "ole" and suffix == ".msg":
        raise UnsupportedFileTypeError(
            f"{name}: a compound file without an Outlook message's properties"
        )
    if by_content == "ole":
        top = _ole_top_names(_ole_directory(path))
        for stream, format_ in _UNREAD_OLE.items():
            if stream in top:
                raise _not_read(name, format_)
    if by_content == "ole" and by_name in ("doc", "ppt", "xls"):
        # Named for one, with no such stream found (a truncated file's directory is
        # lost): its reader says what is wrong with it.
        return FileKind(by_name)
    if by_content == "ole" and by_name is None and (what := no_text(name)) is not None:
        raise NoTextFormatError(f"{name}: {what}: no text to index")  # an installer
    if by_content == "ole":
        raise UnsupportedFileTypeError(
            f"{name}: a compound (OLE) file holding no Word, PowerPoint, Excel or Outlook "
            "document (Visio, Publisher and installers are not read)"
        )
    if by_content == "archive" and by_name in _BINARY_KINDS and by_name != "archive":
        if head.startswith(b"PK\x03\x04") and not _zip_directory(path):
            # Cut short (a download, a copy): a zip's directory is at its end.
            raise CorruptDocumentError(
                f"{name}: a damaged {suffix} file: its zip directory cannot be read (truncated?)"
            )
        if (lost := _lost_part(path, by_name)) is not None:
            # Its parts are there, but not the one that says what they are.
            raise CorruptDocumentError(f"{name}: a damaged {suffix} file: {lost}")
        # A .docx without its parts is broken, not a bundle of files to read one by one.
        raise UnsupportedFileTypeError(f"{name}: a zip or tar archive, not a {suffix} file")
    if by_content == "mbox" and by_name == "email":
        by_content = None  # one message saved with its envelope line
    if by_content is not None:
        xml = by_content in _XML_KINDS and suffix in _XML_SUFFIXES
        if (
            by_name in (None, by_content)
            or xml
            or (by_content == "html" and by_name in ("text", "code"))
        ):
            return FileKind(
                by_content if by_name != "code" else "code",
                language if by_name == "code" else None,
            )
        # The name lies; the content is clear: route by content and say so.
        return FileKind(
            by_content, note=f"named {suffix or 'without extension'} but is {by_content}"
        )
    if by_name is None and (what := no_text(name)) is not None:
        raise NoTextFormatError(f"{name}: {what}: no text to index")
    if by_name is None and (unread := _UNREAD_DOCUMENTS.get(suffix)) is not None:
        raise _not_read(name, unread)
    if by_name == "image" and not (suffix == ".bmp" and head.startswith(b"BM")):
        # Named as an image, its bytes none OCR reads (a BMP's two-byte mark is too weak
        # to trust unnamed): nothing to index, skipped when a walk finds it.
        raise NoTextFormatError(f"{name}: named {suffix} but not an image: no text to index")
    if by_name == "mbox":
        # No "From " line opens it: read as text (a binary one is refused there).
        return FileKind("text", note=f"named {suffix} but not a mailbox")
    if by_name == "arrow" and head.startswith(b"\xff\xff\xff\xff"):
        return FileKind("arrow")  # an Arrow IPC stream (a dataset's save_to_disk), by name
    if by_name == "orc" and head.startswith(b"ORC"):
        return FileKind("orc")  # its end damaged or cut off: read, and said unreadable
    if by_name in _BINARY_KINDS:
        # A binary format by name whose bytes are not that format: text, or refused.
        zipped = by_name in _ZIP_KINDS
        if zipped and head.startswith(b"PK\x05\x06"):
            if by_name == "archive":
                raise BlankDocumentError(f"{name}: an empty zip archive: nothing to index")
            raise CorruptDocumentError(f"{name}: a damaged {suffix} file: an empty zip")
        if by_name == "pdf" and _damaged_pdf(path, head):
            raise CorruptDocumentError(f"{name}: a damaged .pdf file: its header is not a PDF's")
        if zipped and b"\x00" in head and _zip_directory(path):
            # A zip-based file whose first bytes are damaged: its directory, at its end,
            # still lists its parts, and readers find each part by that directory.
            raise CorruptDocumentError(
                f"{name}: a damaged {suffix} file: its first bytes are not a zip's"
            )
        if by_name == "doc" and head[:2] in OLD_WORD_MARKS:
            raise UnsupportedFileTypeError(f"{name}: {OLD_WORD}")
        if by_name in ("doc", "ppt", "xls") and _damaged_ole(head):
            raise CorruptDocumentError(
                f"{name}: a damaged {suffix} file: its first bytes are not a compound file's"
            )
        if suffix == ".tar" and b"\x00" in head:
            # tarfile read no header of it (CPython's recursion.tar): a tar's NUL-padded
            # blocks, damaged, not a file misnamed.
            raise CorruptDocumentError(f"{name}: a damaged .tar file: its headers do not read")
        if b"\x00" in head:
            raise UnsupportedFileTypeError(f"{name}: content does not match its {suffix} extension")
        return FileKind("text", note=f"named {suffix} but is text")
    if by_name == "code":
        return FileKind("code", language)
    if by_name is not None:
        return FileKind(by_name, _TEXT_LANGUAGES.get(suffix) if by_name == "text" else None)
    if suffix == ".msg":
        # Known by content as Outlook's (a compound file): this one is not, so tried as
        # text (Tcl's message catalogs), as any unknown name is.
        note = "named .msg but not an Outlook message: read as text"
        return FileKind("text", note=note, guessed=True)
    if _is_message(head):
        # A mail message saved without .eml: Maildir's files, a mail client's export.
        unknown = f"unknown extension {suffix}" if suffix else "no extension"
        return FileKind("email", note=f"{unknown}; an e-mail message by its headers")
    # Unknown extension: plain text if it decodes as text, else refused by the text parser.
    return FileKind(
        "text", note=f"unknown extension {suffix or '(none)'}; treated as text", guessed=True
    )
