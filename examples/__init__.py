"""Example user tasks: plug one into a study with ``task: examples.<module>:<factory>``."""
