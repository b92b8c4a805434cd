"""Benchmarks of the orchestrator (README, "Benchmarks")."""
