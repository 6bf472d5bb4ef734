"""The app's own tests: they know nothing about auditing, and must pass with it active."""


def test_create_list_delete(client):
    assert client.get("/items").get_json() == []
    item = client.post("/items", json={"name": "pen"}).get_json()["id"]
    assert client.get("/items").get_json() == [{"id": item, "name": "pen"}]
    assert client.delete(f"/items/{item}").status_code == 204
    assert client.get("/items").get_json() == []


def test_missing_item_is_404(client):
    assert client.delete("/items/99").status_code == 404


def test_deleting_an_item_is_audited(client, audit_trail):
    item = client.post("/items", json={"name": "ink"}).get_json()["id"]
    audit_trail.clear()
    client.delete(f"/items/{item}")
    audit_trail.assert_audited(method="DELETE", route="/items/{item_id}", status=204, outcome="success")
