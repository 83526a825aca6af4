"""Environment repos through git: clones and locks, reading files and history, commits,
signing, and pushing."""
