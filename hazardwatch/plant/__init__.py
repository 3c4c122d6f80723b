"""Plant model, GB 18218 grading, risk policy and their YAML loader (see model.py's docstring)."""
