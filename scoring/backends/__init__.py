"""Where the expensive tasks run: one interface, a local and a Ray implementation."""
