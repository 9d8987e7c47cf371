"""Mechanics shared by the three services: hashing, signatures, DNA hashes, LevelDB, errors, server start-up and retries."""
