"""Agent-based engine: per-lane random streams and (later) the agent kernels."""
