from __future__ import annotations

from kb_engine.config import Settings
from kb_engine.drafting.base import Drafter
from kb_engine.drafting.extractive import ExtractiveDrafter


def make_drafter(settings: Settings) -> Drafter:
    """The LLM drafter (falling back to extractive) when KB_LLM_BASE_URL is set, else extractive."""
    if settings.llm_base_url:
        from kb_engine.drafting.llm import LLMDrafter

        return LLMDrafter.from_settings(settings, fallback=ExtractiveDrafter())
    return ExtractiveDrafter()
