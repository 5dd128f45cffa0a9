"""The cache layers under one content-hash key: memory, disk (diskcache) and Redis for a fleet."""
