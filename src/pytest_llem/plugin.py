"""pytest_llem: llem_*.yaml experiment files as pytest items (filled by the plugin issue)."""
