"""Extraction queries (queries/c/*.scm) and QEMU knowledge as data (queries/qemu/), shipped as package data."""
