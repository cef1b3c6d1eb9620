"""From files to an index: sources → parse → chunk → embed → sync."""
