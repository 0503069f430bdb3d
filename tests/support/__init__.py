"""Helpers shared by the API tests: envelope assertions, seed data, the URL
conf walker and real server processes."""
