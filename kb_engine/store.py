"""The answer log and feedback, in SQLite under KB_DATA_DIR (kb.sqlite).

What customers and agents typed is stored redacted (`kb_engine.redact`): the question, the searched
query, the answer text (it may quote the question) and the feedback's reason and edited reply.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from kb_engine.curated import CuratedAnswer
from kb_engine.redact import redact
from kb_engine.schema import Answer

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY, created REAL, question TEXT, query TEXT, audience TEXT, channel TEXT,
    action TEXT, confidence REAL, topic TEXT, drafter TEXT, body TEXT
);
CREATE TABLE IF NOT EXISTS curated (id TEXT PRIMARY KEY, created REAL, body TEXT);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, answer_id TEXT REFERENCES answers(id), created REAL,
    rating TEXT, reason TEXT, edited_reply TEXT
);
"""


class RecordStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: no fsync per answer logged. The connection is in autocommit mode
        # (isolation_level=None), so each write is committed, i.e. in the WAL file, when execute()
        # returns: it survives the process being killed (the OS has it); only a power loss or an OS
        # crash may lose the last answers logged, never corrupt the database. Checked with kill -9
        # (tests/test_redact.py::test_logged_answer_survives_a_killed_process).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def log_answer(self, answer: Answer, audience: str | None, channel: str) -> None:
        answer = answer.model_copy(
            update={
                "question": redact(answer.question),
                "query": redact(answer.query),
                "answer": redact(answer.answer),
            }
        )
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    answer.id,
                    time.time(),
                    answer.question,
                    answer.query,
                    audience,
                    channel,
                    answer.action,
                    answer.confidence,
                    answer.topic,
                    answer.drafter,
                    answer.model_dump_json(),
                ),
            )

    def has_answer(self, answer_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM answers WHERE id = ?", (answer_id,)).fetchone()
        return row is not None

    def add_feedback(self, answer_id: str, rating: str, reason: str | None, edited_reply: str | None) -> int:
        reason = redact(reason) if reason else reason
        edited_reply = redact(edited_reply) if edited_reply else edited_reply
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO feedback (answer_id, created, rating, reason, edited_reply) VALUES (?,?,?,?,?)",
                (answer_id, time.time(), rating, reason, edited_reply),
            )
        return int(cur.lastrowid or 0)

    def feedback_for(self, answer_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT rating, reason, edited_reply FROM feedback WHERE answer_id = ? ORDER BY id",
                (answer_id,),
            ).fetchall()
        return [{"rating": r, "reason": why, "edited_reply": e} for r, why, e in rows]

    def feedback_cases(self, since: float | None = None) -> list[dict[str, Any]]:
        """Answers rated down or rewritten by an agent (their latest feedback), oldest first: what the
        content team reviews as golden-set candidates."""
        with self._lock:
            rows = self._db.execute(
                """
                SELECT a.id, a.created, a.question, a.audience, a.action, a.topic, a.body,
                       f.rating, f.reason, f.edited_reply
                FROM feedback f JOIN answers a ON a.id = f.answer_id
                WHERE f.id IN (SELECT MAX(id) FROM feedback GROUP BY answer_id)
                  AND (f.rating = 'down' OR f.edited_reply IS NOT NULL) AND a.created >= ?
                ORDER BY a.created
                """,
                (since or 0.0,),
            ).fetchall()
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
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO curated VALUES (?,?,?)",
                (item.id, item.created, item.model_dump_json()),
            )

    def curated(self) -> list[CuratedAnswer]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM curated ORDER BY created").fetchall()
        return [CuratedAnswer.model_validate_json(body) for (body,) in rows]

    def delete_curated(self, curated_id: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM curated WHERE id = ?", (curated_id,)).rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
