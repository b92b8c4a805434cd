"""A mission's billing documents as issued (`billing_documents`): listed and read for the
API (`GET /missions/{id}/documents[/{name}]`) and the CLI (`contracting mission documents`).

Read from PostgreSQL, not from Temporal: the files are the ledger's, written by the CRA
validation's transaction (`activities.billing_files`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from db.engine import create_engine, session_factory
from db.models import BillingDocument, Mission


class NoSuchMission(LookupError):
    """No mission has this id (no proposal was ever recorded under it)."""


class NoSuchDocument(LookupError):
    """The mission exists but has no document of this name."""


class DocumentInfo(BaseModel):
    kind: str = Field(description="bpf, or invoice (Factur-X: PDF/A-3 with its CII XML)")
    month: str = Field(description="the CRA's month, YYYY-MM")
    number: str = Field(description="the BPF's or the invoice's number")
    name: str = Field(description="file name, the last segment of `url`")
    content_type: str
    size: int = Field(description="bytes")
    sha256: str
    issued_on: date
    url: str


class MissionDocuments(BaseModel):
    mission_id: str
    documents: list[DocumentInfo]


def document_url(mission_id: str, name: str) -> str:
    return f"/missions/{mission_id}/documents/{name}"


def _info(row: Any) -> DocumentInfo:
    return DocumentInfo(
        kind=str(row.kind),
        month=row.month,
        number=row.number,
        name=row.name,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        issued_on=row.issued_on,
        url=document_url(row.mission_id, row.name),
    )


_LISTED = (
    BillingDocument.mission_id,
    BillingDocument.kind,
    BillingDocument.month,
    BillingDocument.number,
    BillingDocument.name,
    BillingDocument.content_type,
    BillingDocument.size,
    BillingDocument.sha256,
    BillingDocument.issued_on,
)


async def list_documents(sessions: async_sessionmaker[Any], mission_id: str) -> MissionDocuments:
    """The mission's documents, by month then kind; `NoSuchMission` for an unknown id."""
    async with sessions() as session:
        known = await session.scalar(
            select(Mission.mission_id).where(Mission.mission_id == mission_id)
        )
        if known is None:
            raise NoSuchMission(f"no mission {mission_id!r}")
        rows = await session.execute(
            select(*_LISTED)
            .where(BillingDocument.mission_id == mission_id)
            .order_by(BillingDocument.month, BillingDocument.kind)
        )
        return MissionDocuments(mission_id=mission_id, documents=[_info(row) for row in rows])


async def read_document(
    sessions: async_sessionmaker[Any], mission_id: str, name: str
) -> tuple[DocumentInfo, bytes]:
    """One document's description and bytes; `NoSuchMission` or `NoSuchDocument`."""
    async with sessions() as session:
        row = (
            await session.execute(
                select(*_LISTED, BillingDocument.content).where(
                    BillingDocument.mission_id == mission_id, BillingDocument.name == name
                )
            )
        ).one_or_none()
        if row is not None:
            return _info(row), bytes(row.content)
        known = await session.scalar(
            select(Mission.mission_id).where(Mission.mission_id == mission_id)
        )
    if known is None:
        raise NoSuchMission(f"no mission {mission_id!r}")
    raise NoSuchDocument(
        f"mission {mission_id!r} has no document {name!r}; "
        f"GET /missions/{mission_id}/documents lists them"
    )


async def fetch_documents(
    database_url: str, mission_id: str, *, with_files: bool = False
) -> tuple[MissionDocuments, dict[str, bytes]]:
    """For the CLI: the mission's documents and, if asked, their bytes by name."""
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        listing = await list_documents(sessions, mission_id)
        files = {}
        if with_files:
            for doc in listing.documents:
                files[doc.name] = (await read_document(sessions, mission_id, doc.name))[1]
        return listing, files
    finally:
        await engine.dispose()


def save_documents(files: dict[str, bytes], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_bytes(content)


def render_documents(listing: MissionDocuments, saved_in: Path | None = None) -> str:
    """The listing for a person: one line per document."""
    if not listing.documents:
        return f"mission {listing.mission_id}: no billing document yet (no validated CRA)"
    lines = [f"mission {listing.mission_id}: {len(listing.documents)} document(s)"]
    for doc in listing.documents:
        where = saved_in / doc.name if saved_in is not None else doc.url
        lines.append(
            f"  {doc.month}  {doc.kind:<8} {doc.number:<28} {doc.issued_on.isoformat()}  "
            f"{doc.size:>7} B  {where}"
        )
    return "\n".join(lines)
