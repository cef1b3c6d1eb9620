"""One metric family per module; each function documents its steps."""
