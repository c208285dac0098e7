"""colorkit's built-in components, each module a plugin registered by entry point."""
