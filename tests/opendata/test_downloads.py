import json
from opendata.open_world import OpenWorld

def test_explore(ow: OpenWorld) -> None:
    ow.open_air()
    c = ow.client
    for fmt in ["csv", "json", "ndjson", "parquet", "xlsx", "geojson", "xml"]:
        r = c.get(f"/opendata/api/v1/datasets/air/download.{fmt}")
        print(fmt, r.status_code, dict(r.headers), r.content[:200])
    r = c.get("/opendata/api/v1/datasets/air/download.csv", params={"bom": "1"})
    print(r.content[:50])
    print(c.get("/opendata/api/v1/datasets/air").json()["downloads"])
    r = c.get("/catalog.jsonld")
    print(r.status_code, r.headers["content-type"])
    print(json.dumps(r.json(), ensure_ascii=False, indent=1)[:6000])
