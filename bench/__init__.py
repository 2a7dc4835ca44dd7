"""Benchmarks (`make bench`): load through the ingress of a fresh devstack on 127.0.0.1."""
