"""The web admin page: static files over the REST API, served from the package."""
