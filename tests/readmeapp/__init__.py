"""The app the README examples of tests/test_readme_models.py define their models in
(an isolated registry per example; nothing is installed)."""
