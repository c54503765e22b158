"""A caller's metadata: carried on every chunk, never over our provenance, never lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.vectorstores import InMemoryVectorStore

from rag_ingest.errors import ConfigurationError
from rag_ingest.models import HashEmbeddings
from rag_ingest.pipeline import DocumentProcessor
from rag_ingest.settings import Settings

pytestmark = pytest.mark.integration


def settings_for(tmp_path: Path, **store: object) -> Settings:
    """Local files parsed in a thread, hash vectors, small chunks."""
    return Settings.model_validate(
        {
            "progress": False,
            "store": {"persist_dir": str(tmp_path / "store"), **store},
            "models": {"embedder": "hash"},
            "parse": {"mode": "thread", "workers": 1},
            "chunk": {"chunk_tokens": 128, "overlap_tokens": 0},
        }
    )


async def test_caller_metadata_lands_on_every_chunk_and_bad_values_are_refused(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "plan.md"
    doc.write_text("# Plan\n\n" + "The budget grows next year. " * 200)
    settings = settings_for(tmp_path)
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    extra = {"team": "finance", "year": 2026, "draft": False, "note": None, "session_id": "x"}
    async with DocumentProcessor(settings, vectorstore=store) as p:
        result = await p.process_document(doc, session_id="s", metadata=extra)
        assert result.status == "ingested" and result.total_chunks > 1
        for row in store.store.values():
            meta = row["metadata"]
            assert (meta["team"], meta["year"], meta["draft"]) == ("finance", 2026, False)
            assert "note" not in meta and meta["session_id"] == "s"
        refused = "must be str, int, float or bool"
        with pytest.raises(ConfigurationError, match=refused):
            await p.process_document(doc, session_id="s", metadata={"tags": ["a", "b"]})
        with pytest.raises(ConfigurationError, match=refused):
            await p.process_many([doc], session_id="s", metadata={"owner": {"id": 1}})
        with pytest.raises(ConfigurationError, match="tags"):
            p.submit(doc, session_id="s", metadata={"tags": ["a"]})


@pytest.mark.parametrize(
    "metadata",
    [
        {"": 1},
        {"#document": "x"},
        {"$and": 1},
        {"chroma:document": "x"},
        {"score": float("nan")},
        {"score": float("inf")},
        {"big": 10**30},
        {"name": "lone \ud800 surrogate"},
    ],
)
async def test_what_chroma_would_refuse_or_drop_is_refused_before_any_work(
    tmp_path: Path, metadata: dict[str, object]
) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# A\n\nwords\n")
    settings = settings_for(tmp_path, embedded_mode="in-process")
    async with DocumentProcessor(settings) as p:
        with pytest.raises(ConfigurationError, match="metadata"):
            await p.process_document(doc, session_id="s", metadata=metadata)
        # Sound neighbours of those values are taken (Chroma stores them).
        ok = {"k": 2**63 - 1, "f": 1.5, "dotted.key": "ü", "chroma_tag": True}
        assert (await p.process_document(doc, session_id="s", metadata=ok)).status == "ingested"


async def test_new_metadata_or_user_on_an_unchanged_source_updates_its_chunks(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "plan.md"
    doc.write_text("# Plan\n\n" + "The budget grows next year. " * 100)
    settings = settings_for(tmp_path)
    async with DocumentProcessor(settings) as p:
        assert p.store is not None and p.ledger is not None

        async def run(metadata: dict[str, object] | None, user: str | None = None) -> str:
            result = await p.process_document(doc, session_id="s", metadata=metadata, user_id=user)
            return result.status

        def stored() -> tuple[set[str], set[tuple[object, object]]]:
            got = p.store.vectorstore.get(where={"session_id": "s"}, include=["metadatas"])
            values = {(m.get("team"), m.get("user_id")) for m in got["metadatas"]}
            return set(got["ids"]), values

        assert await run(None) == "ingested"
        row = p.ledger.get("s", doc.resolve().as_uri())
        assert row is not None and row.fingerprint == p.fingerprint  # old rows stay valid
        assert await run(None) == "skipped"
        ids, _ = stored()
        assert await run({"team": "finance"}) == "ingested"
        assert stored() == (ids, {("finance", None)})
        assert await run({"team": "finance"}) == "skipped"
        assert await run({"team": "sales"}) == "ingested"
        assert stored() == (ids, {("sales", None)})
        assert await run({"team": "sales"}, user="u2") == "ingested"
        assert stored() == (ids, {("sales", "u2")})
        assert await run({"team": "sales"}, user="u2") == "skipped"
        # Dropped, they are gone from every chunk: Chroma merges the metadata written
        # over a record into what it held, so the old values had stayed.
        assert await run(None) == "ingested"
        assert stored() == (ids, {(None, None)})


class _Recording:
    """A Chroma collection that notes the IDs each get, upsert and update is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.asked: list[str] = []
        self.upserted: list[str] = []
        self.updated: list[str] = []
        self.reads: list[int] = []  # the IDs each get asked for
        self.asked_vectors: list[str] = []  # the IDs whose vectors were asked for
        self.update_keys: list[set[str]] = []  # the metadata keys each updated record got

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, **kwargs: Any) -> Any:
        self.asked += kwargs.get("ids") or []
        self.reads.append(len(kwargs.get("ids") or []))
        if "embeddings" in (kwargs.get("include") or []):
            self.asked_vectors += kwargs.get("ids") or []
        return self.inner.get(**kwargs)

    def upsert(self, **kwargs: Any) -> Any:
        self.upserted += kwargs["ids"]
        return self.inner.upsert(**kwargs)

    def update(self, **kwargs: Any) -> Any:
        self.updated += kwargs["ids"]
        self.update_keys += [set(m) for m in kwargs["metadatas"]]
        return self.inner.update(**kwargs)


@pytest.mark.parametrize("mode", ["server", "in-process"])
async def test_a_chunk_held_with_the_same_text_and_vector_has_its_metadata_updated_alone(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upsert re-indexes the vector: a re-ingest took 25% longer than the first."""
    from rag_ingest import store

    monkeypatch.setattr(store, "_READ_ROWS", 2)  # rows read back in reads of 2
    doc = tmp_path / "plan.md"
    doc.write_text("# Plan\n\n" + "The budget grows next year. " * 100)
    async with DocumentProcessor(settings_for(tmp_path, embedded_mode=mode)) as p:
        assert p.store is not None
        collection = p.store._collection = _Recording(p.store._collection)
        first = await p.process_document(doc, session_id="s", metadata={"team": "ops"})
        ids = sorted(collection.upserted)
        assert len(ids) == first.total_chunks > 1 and collection.updated == []
        assert collection.asked == []  # new chunks, by the ledger: none read back
        before = collection.inner.get(ids=ids, include=["metadatas", "embeddings", "documents"])
        again = await p.process_document(doc, session_id="s", reingest=True)
        assert again.status == "ingested" and sorted(collection.upserted) == ids
        # Read back (by vector reuse too), then their metadata updated, none upserted:
        # only what changed is sent (Chroma keeps the rest).
        assert sorted(collection.updated) == sorted(set(collection.asked)) == ids
        assert collection.update_keys == [{"ingested_at", "team"}] * len(ids)
        assert max(collection.reads) == 2 and len(ids) > 2
        # Each vector read once, by vector reuse; the write's check reads the rest.
        assert sorted(collection.asked_vectors) == ids
        assert sorted(collection.asked) == sorted(ids * 2)
        after = collection.inner.get(ids=ids, include=["metadatas", "embeddings", "documents"])
        assert after["documents"] == before["documents"]
        assert (after["embeddings"] == before["embeddings"]).all()
        for old, held in zip(before["metadatas"], after["metadatas"], strict=True):
            new = dict(held)  # held is written back below
            assert old.pop("team") == "ops" and "team" not in new
            assert old.pop("ingested_at") < new.pop("ingested_at") and old == new
        # The same text with another vector (another embedder's header), or another text
        # under the same ID: written whole. The rest, held as given: not written.
        vectors = np.asarray(after["embeddings"], dtype=np.float32)
        vectors[0] = -vectors[0]
        texts = [*after["documents"]]
        texts[1] = "Another text."
        p.store.upsert(after["ids"], texts, after["metadatas"], vectors)
        assert sorted(collection.upserted) == sorted([*ids, *after["ids"][:2]])
        assert sorted(collection.updated) == ids
        # A value of another type is another value (True is 1 to Python, not to a filter).
        assert after["metadatas"][2]["chunked"] is True
        metadatas = [{**m, "chunked": 1} if i == 2 else m for i, m in enumerate(after["metadatas"])]
        p.store.upsert(after["ids"], texts, metadatas, vectors)
        assert collection.update_keys[len(ids) :] == [{"chunked"}]
        # Vectors said to be read from their own records: those records are read again
        # (not their vectors), and one gone since is written whole.
        gone = after["ids"][3]
        collection.inner.delete(ids=[gone])
        upserted, asked = len(collection.upserted), len(collection.asked_vectors)
        p.store.upsert(after["ids"], texts, metadatas, vectors, own_vectors=set(after["ids"]))
        assert collection.upserted[upserted:] == [gone] and len(collection.asked_vectors) == asked
        assert len(collection.updated) == len(ids) + 1
        got = collection.get(ids=after["ids"][:2], include=["embeddings", "documents"])
        rows = zip(got["documents"], got["embeddings"], strict=True)
        held = dict(zip(got["ids"], rows, strict=True))
        first, second = (held[i] for i in after["ids"][:2])
        assert (np.asarray(first[1], dtype=np.float32) == vectors[0]).all()
        assert second[0] == "Another text."


async def test_a_changed_source_s_unchanged_chunks_keep_their_ids(tmp_path: Path) -> None:
    """A chunk's ID names its text, not its source's version or its place: a section added
    at the top and one reworded write those chunks alone, the reworded one's old chunk is
    deleted, and every other chunk keeps its ID, its metadata updated where it is."""
    doc = tmp_path / "guide.md"

    def write(*sections: tuple[str, str]) -> None:
        doc.write_text(
            "\n\n".join(
                f"## Part {name}\n\n" + f"Part {name} holds {word} detail. " * 12
                for name, word in sections
            )
        )

    async with DocumentProcessor(settings_for(tmp_path)) as p:
        assert p.store is not None
        collection = p.store._collection = _Recording(p.store._collection)

        def stored() -> dict[str, tuple[str, dict[str, Any]]]:
            got = collection.inner.get(include=["documents", "metadatas"])
            rows = zip(got["documents"], got["metadatas"], strict=True)
            return dict(zip(got["ids"], rows, strict=True))

        write(*((str(i), "original") for i in range(6)))
        first = await p.process_document(doc, session_id="s")
        before = stored()
        assert first.total_chunks == len(before) >= 6
        collection.upserted.clear()
        write(("new", "fresh"), *((str(i), "revised" if i == 3 else "original") for i in range(6)))
        second = await p.process_document(doc, session_id="s")
        after = stored()
        assert second.status == "ingested" and second.total_chunks == len(after)
        by_text = {text: i for i, (text, _) in before.items()}
        kept = {i for i, (text, _) in after.items() if by_text.get(text) == i}
        new = set(after) - kept
        written = sorted(after[i][0].split("\n\n")[1][:24] for i in new)
        assert written == ["Part 3 holds revised det", "Part new holds fresh det"]
        assert len(kept) == len(before) - 1 and set(before) - set(after) == set(before) - kept
        assert sorted(collection.upserted) == sorted(new)  # the rest: updated, not upserted
        assert set(collection.updated) == kept
        for i in kept:  # each moved down one place, its new place and version written
            assert after[i][1]["chunk_index"] == before[i][1]["chunk_index"] + 1
            assert after[i][1]["version"] != before[i][1]["version"]
        row = p.ledger.get("s", second.source)
        assert row is not None and sorted(row.chunk_ids) == sorted(after)
