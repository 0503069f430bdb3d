def test_whoami_shape(read_client, org):
    response = read_client.get("/api/v1/whoami")
    assert response.status_code == 200
    body = response.json()
    assert body["organisation_id"] == org.id
    assert body["scope"] == "READ"
    assert response["x-request-id"].startswith("req_")
