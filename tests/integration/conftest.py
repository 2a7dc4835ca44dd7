"""Integration tests talk to the system only through its ingress: AGORA_URL (the
`agora` client and the other fixtures live in tests/conftest.py)."""
