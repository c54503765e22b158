"""Compound (OLE) files, [MS-CFB]: a storage read out of one as a file of its own. An
object embedded in a Word or Excel 97-2003 document is a storage inside it (a workbook
in a report: ``ObjectPool/_1234/Workbook``); its reader (calamine, msdoc2docx) opens
whole files, so the storage is written as one.
"""

from __future__ import annotations

import struct
from typing import Any, Union

from rag_ingest.parsers.base import OLE_MAGIC

__all__ = ["Tree", "compound_file", "storage_tree"]

# A storage: its entries by name, a stream's bytes or a storage's own entries.
Tree = dict[str, Union[bytes, "Tree"]]

_FREE = _NONE = 0xFFFFFFFF
_END, _FAT_SECTOR = 0xFFFFFFFE, 0xFFFFFFFD
_SECTOR, _MINI_SECTOR, _MINI_CUTOFF = 512, 64, 4096


def storage_tree(ole: Any, path: list[str]) -> Tree:
    """The streams and storages under ``path`` in an open ``olefile.OleFileIO``."""
    tree: Tree = {}
    depth = len(path)
    for entry in ole.listdir(streams=True, storages=False):
        if entry[:depth] != path or len(entry) == depth:
            continue
        node = tree
        for part in entry[depth:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break  # a stream and a storage of one name: a damaged directory
            node = child
        else:
            node[entry[-1]] = ole.openstream(entry).read()
    return tree


def compound_file(tree: Tree) -> bytes:
    """A compound file (version 3, 512-byte sectors) holding ``tree``. Streams under
    4096 bytes go in the mini stream, as the format wants; siblings form a binary search
    tree in the format's name order."""
    entries: list[dict[str, Any]] = [{"name": "Root Entry", "type": 5}]

    def add(children: Tree) -> int:
        ids = []
        for name, value in children.items():
            entry: dict[str, Any] = {"name": name[:31]}
            entries.append(entry)
            ids.append(len(entries) - 1)
            if isinstance(value, dict):
                entry["type"], entry["child"] = 1, add(value)
            else:
                entry["type"], entry["data"] = 2, value
        ids.sort(key=lambda i: (len(entries[i]["name"]), entries[i]["name"].upper()))

        def balanced(lo: int, hi: int) -> int:
            if lo >= hi:
                return _NONE
            mid = (lo + hi) // 2
            entries[ids[mid]]["left"] = balanced(lo, mid)
            entries[ids[mid]]["right"] = balanced(mid + 1, hi)
            return ids[mid]

        return balanced(0, len(ids))

    entries[0]["child"] = add(tree)
    sectors: list[bytes] = []
    fat: list[int] = []
    mini: list[bytes] = []
    minifat: list[int] = []

    def chain(data: bytes, size: int, table: list[int], store: list[bytes]) -> int:
        if not data:
            return _END
        first = len(store)
        pieces = [data[at : at + size].ljust(size, b"\0") for at in range(0, len(data), size)]
        for i, piece in enumerate(pieces):
            store.append(piece)
            table.append(first + i + 1 if i < len(pieces) - 1 else _END)
        return first

    for entry in entries[1:]:
        data = entry.get("data")
        if isinstance(data, bytes):
            small = len(data) < _MINI_CUTOFF
            place = (_MINI_SECTOR, minifat, mini) if small else (_SECTOR, fat, sectors)
            entry["start"] = chain(data, *place)
    entries[0]["start"] = chain(b"".join(mini), _SECTOR, fat, sectors)
    entries[0]["size"] = len(mini) * _MINI_SECTOR
    minifat_data = b"".join(struct.pack("<I", n) for n in minifat)
    first_minifat = chain(minifat_data, _SECTOR, fat, sectors)
    records = []
    for entry in entries:
        name = entry["name"].encode("utf-16-le") + b"\0\0"
        data = entry.get("data")
        size = len(data) if isinstance(data, bytes) else int(entry.get("size", 0))
        start = entry.get("start", _END) if size or entry["type"] == 5 else 0
        records.append(
            name.ljust(64, b"\0")
            + struct.pack("<HBB", len(name), entry["type"], 1)
            + struct.pack("<III", entry.get("left", _NONE), entry.get("right", _NONE),
                          entry.get("child", _NONE))
            + bytes(36)
            + struct.pack("<IQ", start, size)
        )  # fmt: skip
    while len(records) % 4:  # a sector holds 4 entries: the rest unused
        records.append(bytes(64) + struct.pack("<HBBIII", 0, 0, 0, _NONE, _NONE, _NONE) + bytes(48))
    first_directory = chain(b"".join(records), _SECTOR, fat, sectors)
    fat_sectors = 1
    while len(sectors) + fat_sectors > fat_sectors * (_SECTOR // 4):
        fat_sectors += 1
    if fat_sectors > 109:
        raise ValueError("too large for a compound file without DIFAT sectors (~6.8 MB)")
    first_fat = len(sectors)
    fat += [_FAT_SECTOR] * fat_sectors
    fat += [_FREE] * (fat_sectors * (_SECTOR // 4) - len(fat))
    fat_data = b"".join(struct.pack("<I", n) for n in fat)
    sectors += [fat_data[at : at + _SECTOR] for at in range(0, len(fat_data), _SECTOR)]
    difat = [first_fat + i for i in range(fat_sectors)] + [_FREE] * (109 - fat_sectors)
    minifat_sectors = -(-len(minifat_data) // _SECTOR)
    header = (
        OLE_MAGIC + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
        + struct.pack("<IIIIIIIII", 0, fat_sectors, first_directory, 0, _MINI_CUTOFF,
                      first_minifat, minifat_sectors, _END, 0)
        + b"".join(struct.pack("<I", n) for n in difat)
    )  # fmt: skip
    return header + b"".join(sectors)
