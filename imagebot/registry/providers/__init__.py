"""Credential sources: Docker config, env vars, files, and cloud token exchanges."""
