"""Drafters turn passages into an answer with ``[n]`` citation markers."""

from kb_engine.drafting.base import Drafter, number_passages
from kb_engine.drafting.citations import validate_citations

__all__ = ["Drafter", "number_passages", "validate_citations"]
