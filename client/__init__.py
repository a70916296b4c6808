"""chatmodel client."""
