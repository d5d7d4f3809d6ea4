from tests.conftest import Factory


def test_published_entry_found_by_search(client, factory: Factory) -> None:
    org = factory.org()
    pub = factory.user("pub", org=org, roles=("publisher",))
    factory.entry(pub, org)
    body = client.get("/api/v1/datasets", params={"q": "公交"}).json()
    assert body["count"] == 1
    assert body["results"][0]["title"] == "海河市公交线路及站点信息"
