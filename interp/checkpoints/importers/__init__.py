"""Importers of checkpoints other people trained, one module per layout; each returns a grokscope
`Run` or `Checkpoint`, read without unpickling code."""
