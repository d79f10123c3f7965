"""The test suite; its tree mirrors the package tree (tests/overlay/ tests seattle/overlay/)."""
