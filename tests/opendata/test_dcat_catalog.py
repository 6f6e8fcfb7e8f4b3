import json
from opendata.open_world import OpenWorld

def test_explore(ow: OpenWorld) -> None:
    ow.open_air()
    ow.release("air", note="第二版")
    c = ow.client
    r = c.get("/opendata/datasets/air.jsonld")
    print(r.status_code, r.headers["content-type"])
    g = r.json()["@graph"]
    for n in g:
        print(n.get("@id"), n.get("@type"), n.get("dcat:version"), n.get("dcat:inSeries"), n.get("dcat:first"), n.get("dcat:last"), n.get("dct:temporal"))
    ow.register()
    r = c.get("/opendata/datasets/register.jsonld")
    print(r.status_code, r.text[:200])
    d = ow.draft("register", who="police.steward")
    print(d.status_code, d.text[:300])
    r = c.get("/opendata/datasets/register.jsonld")
    print(r.status_code, r.text[:200])
    print([n["@id"] for n in c.get("/catalog.jsonld").json()["@graph"]])
