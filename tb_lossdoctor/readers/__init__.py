"""Readers adapt a source of scalars into a list of `Series` for the engine."""
