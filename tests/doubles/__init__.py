"""In-memory implementations of the registry's bucket and upstream, for unit tests."""
