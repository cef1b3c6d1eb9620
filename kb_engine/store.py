"""The answer log, feedback and curated answers: SQLite in KB_DATA_DIR (kb.sqlite) by default, or any
database SQLAlchemy reaches through ``KB_DATABASE_URL`` — PostgreSQL for several API replicas, which then
share one log (an answer given by one replica can be rated through another).

What customers and agents typed is stored redacted (`kb_engine.redact`): the question, the searched
query, the answer text (it may quote the question) and the feedback's reason and edited reply.
Analytics read whole records (``answers``, ``feedback``) and aggregate in Python, so every backend
gives the same numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from kb_engine.config import Settings
from kb_engine.curated import CuratedAnswer
from kb_engine.errors import ConfigError, KBError
from kb_engine.redact import redact
from kb_engine.schema import Answer

_meta = sa.MetaData()
_answers = sa.Table(
    "answers",
    _meta,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created", sa.Float, index=True),
    sa.Column("question", sa.Text),
    sa.Column("query", sa.Text),
    sa.Column("audience", sa.String(16)),
    sa.Column("channel", sa.String(32)),
    sa.Column("action", sa.String(16)),
    sa.Column("confidence", sa.Float),
    sa.Column("topic", sa.String(200)),
    sa.Column("drafter", sa.String(32)),
    sa.Column("body", sa.Text),  # the whole Answer as JSON
    sa.Column("latency_ms", sa.Float),
    sa.Column("cited", sa.Text),  # JSON list of {doc_id, title, url}, in citation order, one per document
)
_feedback = sa.Table(
    "feedback",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("answer_id", sa.String(64), sa.ForeignKey("answers.id"), index=True),
    sa.Column("created", sa.Float, index=True),
    sa.Column("rating", sa.String(8)),
    sa.Column("reason", sa.Text),
    sa.Column("edited_reply", sa.Text),
)
_curated = sa.Table(
    "curated",
    _meta,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created", sa.Float),
    sa.Column("body", sa.Text),
)
# Columns added after the first release: a log written by an older version gains them when opened.
_ADDED_COLUMNS = {"answers": ("latency_ms", "cited")}


class StoreError(KBError):
    """The answer log's database cannot be reached or used."""


@dataclass(frozen=True)
class CitedDoc:
    doc_id: str
    title: str
    url: str | None


@dataclass(frozen=True)
class AnswerRecord:
    """One logged answer, as analytics read it (question redacted)."""

    id: str
    created: float  # unix seconds
    question: str
    audience: str | None
    channel: str  # chat | email | voice | suggest (agents' drafts) | openai:<channel>
    action: str  # answer | clarify | handoff
    confidence: float
    topic: str | None
    drafter: str
    latency_ms: float | None
    cited: tuple[CitedDoc, ...]
    answer: str = ""  # the text given (redacted); for "suggest", the short draft without greeting


@dataclass(frozen=True)
class FeedbackRecord:
    id: int
    answer_id: str
    created: float
    rating: str  # up | down
    reason: str | None
    edited_reply: str | None


def database_url(settings: Settings) -> str:
    return settings.database_url or f"sqlite:///{settings.data_dir / 'kb.sqlite'}"


def open_store(settings: Settings) -> RecordStore:
    return RecordStore(database_url(settings))


def _engine_for(target: Path | str) -> Engine:
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        target = f"sqlite:///{target}"
    try:
        url = make_url(target)
    except ArgumentError as e:
        raise ConfigError(f"KB_DATABASE_URL is not a database URL: {e}") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")  # the driver we ship (psycopg 3)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # timeout: a writer waits for another process's write (kb serve + kb report) instead of failing.
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: no fsync per answer logged. Each write is committed, i.e. in the WAL file,
            # when its transaction ends: it survives the process being killed (the OS has it); only a
            # power loss or an OS crash may lose the last answers logged, never corrupt the database.
            # Checked with kill -9 (tests/test_redact.py::test_logged_answer_survives_a_killed_process).
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except (ArgumentError, ImportError) as e:
        raise ConfigError(f"KB_DATABASE_URL: unsupported database {url.drivername!r}: {e}") from None


def _safe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _cited(answer: Answer) -> str:
    docs = {c.doc_id: {"doc_id": c.doc_id, "title": c.title, "url": c.url} for c in answer.citations}
    return json.dumps(list(docs.values()), ensure_ascii=False)


class RecordStore:
    """The log behind the API. ``target``: a SQLite file path or a SQLAlchemy database URL."""

    def __init__(self, target: Path | str) -> None:
        self._engine = _engine_for(target)
        self.url = _safe(self._engine.url)
        try:
            _meta.create_all(self._engine)
            self._add_missing_columns()
        except SQLAlchemyError as e:
            self._engine.dispose()
            raise StoreError(f"answer log {self.url}: {_reason(e)}") from None

    def _add_missing_columns(self) -> None:
        inspector = sa.inspect(self._engine)
        for table, columns in _ADDED_COLUMNS.items():
            have = {c["name"] for c in inspector.get_columns(table)}
            with self._engine.begin() as db:
                for name in columns:
                    if name not in have:
                        column = _meta.tables[table].c[name]
                        kind = column.type.compile(self._engine.dialect)
                        db.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One committed transaction; database failures become StoreError (the API answers 503)."""
        try:
            with self._engine.begin() as db:
                yield db
        except SQLAlchemyError as e:
            raise StoreError(f"answer log {self.url}: {_reason(e)}") from None

    # --- answers and feedback (typed by customers and agents: redacted) ---
    def log_answer(self, answer: Answer, audience: str | None, channel: str) -> None:
        answer = answer.model_copy(
            update={
                "question": redact(answer.question),
                "query": redact(answer.query),
                "answer": redact(answer.answer),
            }
        )
        row = {
            "id": answer.id,
            "created": time.time(),
            "question": answer.question,
            "query": answer.query,
            "audience": audience,
            "channel": channel,
            "action": answer.action,
            "confidence": answer.confidence,
            "topic": answer.topic,
            "drafter": answer.drafter,
            "body": answer.model_dump_json(),
            "latency_ms": answer.timings_ms.get("total"),
            "cited": _cited(answer),
        }
        with self._tx() as db:
            db.execute(_upsert(db, _answers, row))

    def has_answer(self, answer_id: str) -> bool:
        with self._tx() as db:
            found = db.execute(sa.select(_answers.c.id).where(_answers.c.id == answer_id)).first()
        return found is not None

    def add_feedback(self, answer_id: str, rating: str, reason: str | None, edited_reply: str | None) -> int:
        row = {
            "answer_id": answer_id,
            "created": time.time(),
            "rating": rating,
            "reason": redact(reason) if reason else reason,
            "edited_reply": redact(edited_reply) if edited_reply else edited_reply,
        }
        with self._tx() as db:
            result = db.execute(_feedback.insert().values(**row).returning(_feedback.c.id))
            return int(result.scalar_one())

    def answer_count(self) -> int:
        with self._tx() as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(_answers)).scalar_one())

    def feedback_for(self, answer_id: str) -> list[dict[str, Any]]:
        f = _feedback.c
        query = sa.select(f.rating, f.reason, f.edited_reply).where(f.answer_id == answer_id).order_by(f.id)
        with self._tx() as db:
            rows = db.execute(query).all()
        return [{"rating": r, "reason": why, "edited_reply": e} for r, why, e in rows]

    def answers(self, since: float | None = None, until: float | None = None) -> list[AnswerRecord]:
        """Logged answers created in [since, until), oldest first."""
        a = _answers.c
        query = sa.select(
            a.id,
            a.created,
            a.question,
            a.audience,
            a.channel,
            a.action,
            a.confidence,
            a.topic,
            a.drafter,
            a.latency_ms,
            a.cited,
            a.body,
        )
        with self._tx() as db:
            rows = db.execute(_window(query, a.created, since, until).order_by(a.created, a.id)).all()
        return [_answer_record(row) for row in rows]

    def feedback(self, since: float | None = None, until: float | None = None) -> list[FeedbackRecord]:
        """Feedback given in [since, until), in the order given."""
        f = _feedback.c
        query = sa.select(f.id, f.answer_id, f.created, f.rating, f.reason, f.edited_reply)
        with self._tx() as db:
            rows = db.execute(_window(query, f.created, since, until).order_by(f.id)).all()
        return [FeedbackRecord(*row) for row in rows]

    def feedback_cases(self, since: float | None = None) -> list[dict[str, Any]]:
        """Answers rated down or rewritten by an agent (their latest feedback), oldest first: what the
        content team reviews as golden-set candidates."""
        a, f = _answers.c, _feedback.c
        latest = sa.select(sa.func.max(f.id)).group_by(f.answer_id)
        query = (
            sa.select(
                a.id,
                a.created,
                a.question,
                a.audience,
                a.action,
                a.topic,
                a.body,
                f.rating,
                f.reason,
                f.edited_reply,
            )
            .join_from(_feedback, _answers, a.id == f.answer_id)
            .where(f.id.in_(latest), sa.or_(f.rating == "down", f.edited_reply.is_not(None)))
            .where(a.created >= (since or 0.0))
            .order_by(a.created)
        )
        with self._tx() as db:
            rows = db.execute(query).all()
        keys = ("answer_id", "created", "question", "audience", "action", "topic", "body")
        out = []
        for *answer, rating, reason, edited in rows:
            case = dict(zip(keys, answer, strict=True))
            body = Answer.model_validate_json(case.pop("body"))
            case.update(
                answer=body.answer,
                cited=list(dict.fromkeys(c.doc_id for c in body.citations)),
                rating=rating,
                reason=reason,
                edited_reply=edited,
            )
            out.append(case)
        return out

    # --- curated answers (written by the content team: not redacted) ---
    def add_curated(self, item: CuratedAnswer) -> None:
        row = {"id": item.id, "created": item.created, "body": item.model_dump_json()}
        with self._tx() as db:
            db.execute(_upsert(db, _curated, row))

    def curated(self) -> list[CuratedAnswer]:
        with self._tx() as db:
            rows = db.execute(sa.select(_curated.c.body).order_by(_curated.c.created)).all()
        return [CuratedAnswer.model_validate_json(body) for (body,) in rows]

    def delete_curated(self, curated_id: str) -> bool:
        with self._tx() as db:
            return db.execute(_curated.delete().where(_curated.c.id == curated_id)).rowcount > 0

    def close(self) -> None:
        self._engine.dispose()


def _upsert(db: Connection, table: sa.Table, row: dict[str, Any]) -> sa.Executable:
    """Insert, or replace the row with the same primary key (SQLite and PostgreSQL alike)."""
    if db.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(table).values(**row)
        return pg.on_conflict_do_update(index_elements=["id"], set_={k: pg.excluded[k] for k in row})
    if db.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as lite_insert

        lite = lite_insert(table).values(**row)
        return lite.on_conflict_do_update(index_elements=["id"], set_={k: lite.excluded[k] for k in row})
    raise StoreError(f"the answer log supports SQLite and PostgreSQL, not {db.dialect.name}")


def _window(query: sa.Select[Any], column: Any, since: float | None, until: float | None) -> sa.Select[Any]:
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


def _answer_record(row: sa.Row[Any]) -> AnswerRecord:
    m = row._mapping
    latency, cited = m["latency_ms"], m["cited"]
    text = str(json.loads(m["body"]).get("answer", ""))
    if cited is None:  # logged before the column existed: read the answer itself
        answer = Answer.model_validate_json(m["body"])
        cited, latency = _cited(answer), answer.timings_ms.get("total")
    return AnswerRecord(
        id=m["id"],
        created=m["created"],
        question=m["question"],
        audience=m["audience"],
        channel=m["channel"],
        action=m["action"],
        confidence=m["confidence"],
        topic=m["topic"],
        drafter=m["drafter"],
        latency_ms=latency,
        cited=tuple(CitedDoc(d["doc_id"], d["title"], d.get("url")) for d in json.loads(cited)),
        answer=text,
    )


def _reason(error: SQLAlchemyError) -> str:
    """The database's own message, one line, without SQLAlchemy's SQL echo and background link."""
    cause = getattr(error, "orig", None) or error
    return " ".join(str(cause).split("\n")[0].split()) or type(cause).__name__
