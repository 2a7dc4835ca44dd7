"""users through the ingress."""

from __future__ import annotations


def test_user_lifecycle_and_adults(agora, unique):
    adult = agora.post(
        "/api/v1/users", json={"name": "Ivo", "age": 25, "email": f"ivo-{unique}@example.com"}
    )
    assert adult.status_code == 201
    minor = agora.post("/api/v1/users", json={"name": "Ana", "age": 17})
    assert minor.status_code == 201
    assert agora.get(adult.headers["Location"]).json() == adult.json()

    adults = agora.get("/api/v1/users/adults", params={"limit": 100})
    ids = {u["id"] for u in adults.json()["items"]}
    total = adults.json()["total"]
    offset = 100
    while offset < total:  # walk every page: the database may hold other tests' users
        page = agora.get("/api/v1/users/adults", params={"limit": 100, "offset": offset})
        ids |= {u["id"] for u in page.json()["items"]}
        offset += 100
    assert adult.json()["id"] in ids and minor.json()["id"] not in ids

    older = agora.get("/api/v1/users", params={"min_age": 200})
    assert older.status_code == 400


def test_duplicate_email_is_409(agora, unique):
    email = f"dup-{unique}@example.com"
    assert (
        agora.post("/api/v1/users", json={"name": "A", "age": 30, "email": email}).status_code
        == 201
    )
    again = agora.post("/api/v1/users", json={"name": "B", "age": 31, "email": email.upper()})
    assert again.status_code == 409


def test_missing_user_is_404(agora):
    resp = agora.get("/api/v1/users/987654321")
    assert resp.status_code == 404
    assert resp.json() == {
        "error": "User 987654321 does not exist",
        "code": "not_found",
        "details": [],
    }


def test_bad_user_is_400_with_details(agora):
    resp = agora.post("/api/v1/users", json={"name": "", "age": "old", "email": "nope"})
    assert resp.status_code == 400
    assert {d["field"] for d in resp.json()["details"]} == {"name", "age", "email"}
