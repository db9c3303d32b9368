"""Command-line entry points (`interp-train`); the only modules besides the report that print."""
