"""Test-data generators (MNI phantoms). Not part of the public API."""
