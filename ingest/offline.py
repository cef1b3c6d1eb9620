"""unstructured, offline, for every user.

unstructured's text heuristics call spaCy's ``en_core_web_sm`` and, when it is missing, download it
from GitHub at run time: that fails on an air-gapped machine and would phone home on any other.
We only need sentence boundaries and tokens (Russian text; no English POS tags), so before the
first partition we hand unstructured a blank multilingual spaCy pipeline with a rule-based
sentencizer, built in memory from spaCy itself. Nothing is installed or fetched; the check is
``tests/test_offline.py``, which ingests with the network blocked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# unstructured reports usage to its servers unless told not to.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")


@lru_cache(maxsize=1)
def sentence_pipeline() -> Any:
    import spacy

    nlp = spacy.blank("xx")
    nlp.add_pipe("sentencizer")
    return nlp


@dataclass(frozen=True)
class Partitioners:
    html: Any  # Markdown too: ``ingest.parse`` converts it first, as ``partition_md`` would
    docx: Any
    text: Any


@lru_cache(maxsize=1)
def partitioners() -> Partitioners:
    """unstructured's partitioners, with the offline sentence pipeline installed first."""
    import unstructured.nlp.tokenize as tokenize

    # ``_get_nlp`` is the single place unstructured obtains its pipeline (lru-cached there);
    # replacing it before first use means the download path is never reached.
    tokenize._get_nlp = sentence_pipeline
    from unstructured.partition.docx import partition_docx
    from unstructured.partition.html import partition_html
    from unstructured.partition.text import partition_text

    return Partitioners(html=partition_html, docx=partition_docx, text=partition_text)
