"""The hcsvfs command line: demo, ls, info, cp, convert, validate, preview, stats, bench (see docs/cli.md)."""
