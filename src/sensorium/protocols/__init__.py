"""Wire protocols: sans-IO parsers and the thin handlers that feed their rows to the engine."""
