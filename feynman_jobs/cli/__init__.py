"""The `feynman-jobs` command."""
