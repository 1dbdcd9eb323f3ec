"""SQL files of this stage (package data, read with importlib.resources)."""
