"""Storage engine: the write path and the read path; imports no protocol."""
