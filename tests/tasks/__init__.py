"""User tasks the tests plug in as ``tests.tasks.module:factory``."""
