"""Platform-managed jobs: the local gateway runs none (runs.py says so, with what to do instead)."""
