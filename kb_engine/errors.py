"""The errors kb-engine raises on purpose. Each message says what was wrong and what to do.

KBError
├── ConfigError            a setting or an argument is invalid
├── KBIndexError            the index cannot be used
│   ├── IndexLockedError   another process holds the embedded index directory
│   ├── IndexSchemaError   the index was built with another embedding size / schema
│   ├── IndexUnavailable   the Qdrant server cannot be reached
│   └── StorageFullError   the data directory is (nearly) out of space: writes stop before it is
├── EmbeddingError         the embedding model or API failed
└── DocumentError          one input file cannot be ingested (reported, the batch goes on)
    ├── UnsupportedFormat
    ├── EmptyDocument
    ├── DocumentTooLarge
    ├── UndecodableDocument
    └── CorruptDocument
"""

from __future__ import annotations


class KBError(Exception):
    """Base of every error kb-engine raises deliberately."""


class ConfigError(KBError):
    pass


class KBIndexError(KBError):
    pass


class IndexLockedError(KBIndexError):
    pass


class IndexSchemaError(KBIndexError):
    pass


class IndexUnavailable(KBIndexError):
    pass


class StorageFullError(KBIndexError):
    """Writes are refused while the data directory has less free space than KB_MIN_FREE_MB: the
    embedded engine memory-maps its files, and a write into a full disk kills the process (SIGBUS)."""


class EmbeddingError(KBError):
    pass


class DocumentError(KBError):
    """A file that cannot be ingested. ``reason`` is a short code for reports."""

    reason = "error"


class UnsupportedFormat(DocumentError):
    reason = "unsupported"


class EmptyDocument(DocumentError):
    reason = "empty"


class DocumentTooLarge(DocumentError):
    reason = "too-large"


class UndecodableDocument(DocumentError):
    reason = "undecodable"


class CorruptDocument(DocumentError):
    reason = "corrupt"
