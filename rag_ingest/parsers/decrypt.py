"""Office files encrypted with Office's built-in default password. Excel encrypts a
workbook "protected from changes" (and one saved read-only recommended, or by tools that
lock sheets) with a password it also knows, and opens it without asking: such a file is
read, not failed as password-protected. msoffcrypto-tool (MIT, extra ``office``)
decrypts it: an encrypted DOCX/XLSX/PPTX package (ECMA-376 standard or agile
encryption) and RC4-encrypted ``.xls``, ``.doc`` and ``.ppt``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rag_ingest.errors import disk_full
from rag_ingest.parsers.base import OLE_MAGIC

__all__ = ["DEFAULT_PASSWORD_NOTE", "default_password_copy", "office_encrypted"]

# Office's own: [MS-OFFCRYPTO] 2.3.6.3, "VelvetSweatshop". Not a secret.
_DEFAULT_PASSWORD = "VelvetSweatshop"
DEFAULT_PASSWORD_NOTE = (
    "encrypted with Office's built-in default password (protected from changes, not "
    "from reading): read decrypted"
)


def office_encrypted(path: str) -> bool:
    """Whether a compound file is an encrypted Office document (msoffcrypto-tool says),
    False when it is not one or msoffcrypto-tool is not installed."""
    with _encrypted_office(path) as office:
        return office is not None


@contextlib.contextmanager
def default_password_copy(path: str, name: str, temp_dir: str | None) -> Iterator[str | None]:
    """The path of a decrypted copy of ``path``, removed after, when Office's default
    password opens it; None when it is not such a file (or msoffcrypto-tool is missing)."""
    with _encrypted_office(path) as office:
        if office is None:
            yield None
            return
        fd, out_path = tempfile.mkstemp(prefix=".decrypted-", dir=temp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                opened = _decrypt(office, out)
        except BaseException as exc:  # a full disk, the worker's memory limit
            with contextlib.suppress(OSError):
                os.unlink(out_path)
            full = disk_full(exc, Path(out_path).parent, f"decrypting {name}")
            if full is not None:
                raise full from exc
            raise
    try:
        yield out_path if opened else None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(out_path)


@contextlib.contextmanager
def _encrypted_office(path: str) -> Iterator[Any | None]:
    """msoffcrypto-tool's reader of an encrypted Office document, None for any other
    file (or without msoffcrypto-tool)."""
    with open(path, "rb") as f:
        if f.read(8) != OLE_MAGIC:
            yield None  # only compound files hold an encrypted Office document
            return
        f.seek(0)
        office = None
        try:
            import msoffcrypto

            office = msoffcrypto.OfficeFile(f)
            if not office.is_encrypted():
                office = None
        except MemoryError:
            raise
        except Exception:  # not installed, not an Office file it knows, or damaged: its
            office = None  # parser says what is wrong
        yield office


def _decrypt(office: Any, out: IO[bytes]) -> bool:
    """Write the decrypted file to ``out``; False when the default password is not its."""
    try:
        office.load_key(password=_DEFAULT_PASSWORD)
        office.decrypt(out)
    except (MemoryError, OSError):
        raise  # the worker's memory limit, a full disk: not a wrong password
    except Exception:  # InvalidKeyError, or an encryption it cannot read
        return False
    return True
