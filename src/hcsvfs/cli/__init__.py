"""Command line: demo, ls, cp, info, validate, stats, bench, preview."""
