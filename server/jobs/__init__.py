"""The job system: SQLite store, live event hub, the runner that schedules stage processes."""
