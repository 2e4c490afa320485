"""HTTP API: validation, storing inputs, creating task rows, enqueueing."""
