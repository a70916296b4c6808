"""Scale EGP compatibility tests."""
