"""Citation support judged by an LLM (optional): does the cited passage say what the sentence says?

The offline measure (``citations.citation_support``) counts shared lemmas, so it cannot tell «можно
вернуть» from «нельзя вернуть». When an OpenAI-compatible LLM is configured, the judge reads each
answer sentence with the passages it cites and returns a verdict per sentence, through the real
``openai`` SDK. One request per answer; a failed request or an unreadable reply scores None (not
counted) and is counted in ``errors`` — a judge that cannot answer must not look like a pass.
"""

from __future__ import annotations

import json
import re
from typing import Any

from openai import OpenAI, OpenAIError

from kb_engine.schema import Answer

_CITED = re.compile(r"(.+?)((?:\s*\[\d+\])+)")

PROMPT = (
    "You check answers of a customer-support assistant against their sources. You get numbered "
    "SOURCES and numbered CLAIMS; each claim names the sources it cites. For each claim decide whether "
    "the cited sources state it (a paraphrase is fine; anything the sources do not say, or say "
    "differently — other numbers, a negation, a condition left out that changes the meaning — is not "
    'supported). Reply with JSON only: {"supported": [true, false, ...]}, one boolean per claim, in order.'
)


class LLMJudge:
    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 30.0
    ) -> None:
        self.client = OpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=1
        )
        self.model = model
        self.errors = 0

    def support(self, answer: Answer) -> float | None:
        claims = claims_of(answer)
        if not claims or not answer.citations:
            return None
        sources = "\n\n".join(f"[{c.n}] {c.title}\n{c.quote}" for c in answer.citations)
        listed = "\n".join(
            f"{i}. {text} (cites {', '.join(map(str, ns))})" for i, (text, ns) in enumerate(claims, 1)
        )
        try:
            reply = self.client.chat.completions.create(
                model=self.model,
                temperature=0,
                messages=[
                    {"role": "system", "content": PROMPT},
                    {"role": "user", "content": f"SOURCES:\n{sources}\n\nCLAIMS:\n{listed}"},
                ],
            )
            verdicts = _verdicts(reply.choices[0].message.content or "", len(claims))
        except OpenAIError:  # timeouts, connection errors, 4xx/5xx: not scored, counted
            verdicts = None
        if verdicts is None:
            self.errors += 1
            return None
        return sum(verdicts) / len(verdicts)


def claims_of(answer: Answer) -> list[tuple[str, list[int]]]:
    """Answer sentences with the citation numbers after them."""
    out = []
    for text, marks in _CITED.findall(answer.answer):
        text = text.strip(" -\n")
        if text:
            out.append((text, [int(n) for n in re.findall(r"\d+", marks)]))
    return out


def _verdicts(text: str, expected: int) -> list[bool] | None:
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if not match:
        return None
    try:
        data: Any = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    verdicts = data.get("supported") if isinstance(data, dict) else None
    if (
        not isinstance(verdicts, list)
        or len(verdicts) != expected
        or not all(isinstance(v, bool) for v in verdicts)
    ):
        return None
    return verdicts
