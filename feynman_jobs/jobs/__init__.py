"""Job functions: plain typed functions, importable by dotted path, with no Flask in them."""
