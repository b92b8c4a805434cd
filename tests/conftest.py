"""Shared fixtures: real PostgreSQL, SMTP sink, Temporal (time-skipping and dev server), gateway."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.smtp",
    "tests.fixtures.temporal",
    "tests.fixtures.gateway",
    "tests.fixtures.missions",
]
