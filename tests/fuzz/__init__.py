"""Hostile-input fuzzing against real masters (`python -m tests.fuzz --seconds 600`, `make fuzz`)."""
