"""The golden set: questions, gold documents, key facts, a reference answer (datasets/README.md)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kb_engine.errors import ConfigError
from kb_engine.schema import Turn

DATASETS = Path(__file__).resolve().parent / "datasets"
GOLDEN = DATASETS / "golden"


class Gold(BaseModel):
    model_config = ConfigDict(frozen=True)

    doc_id: str
    section: str | None = None


class GoldenItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    question: str = Field(min_length=1)
    audience: Literal["buyer", "seller"] | None = None
    history: list[Turn] = Field(default_factory=list)
    as_of: date | None = None
    style: str
    answerable: bool
    gold: list[Gold] = Field(default_factory=list)
    key_facts: list[str] = Field(default_factory=list)
    reference: str = ""
    topic: str | None = None
    split: Literal["dev", "heldout"] = "dev"


def load(path: Path = GOLDEN, split: str | None = None) -> list[GoldenItem]:
    """Items from a JSONL file or every ``*.jsonl`` in a folder, optionally one split."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise ConfigError(f"no dataset files (*.jsonl) in {path}")
    items: list[GoldenItem] = []
    for file in files:
        for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(GoldenItem.model_validate(json.loads(line)))
            except (json.JSONDecodeError, ValidationError) as exc:
                raise ConfigError(f"{file.name}:{lineno}: not a valid golden item: {exc}") from exc
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise ConfigError("duplicate question ids in the dataset")
    return [i for i in items if split is None or i.split == split]
