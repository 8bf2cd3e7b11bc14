"""OGC API – Features over the registry and cases."""
