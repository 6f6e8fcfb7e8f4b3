import re
from helpers import login, csrf_of
from opendata.open_world import OpenWorld

def test_explore(ow: OpenWorld) -> None:
    ow.open_air()
    c = ow.client
    for path in ["/opendata", "/opendata/datasets", "/opendata/datasets?q=空气", "/opendata/datasets/air", "/opendata/datasets/air/releases/1", "/opendata/requests", "/opendata/requests/new", "/opendata/statistics", "/opendata/overdue", "/opendata/developers"]:
        for lang in ["", "en"]:
            r = c.get(path, params={"lang": lang} if lang else None)
            title = re.search(r"<title>(.*?)</title>", r.text, re.S)
            h1 = re.search(r"<h1[^>]*>(.*?)</h1>", r.text, re.S)
            print(path, lang, r.status_code, title and title.group(1).strip()[:60], h1 and h1.group(1).strip()[:80], r.headers.get("content-language"))
    r = c.get("/opendata/datasets/air", params={"where": "pm25 >"})
    print(r.status_code, re.search(r'id="preview-error">(.*?)<', r.text))
    r = c.get("/opendata/datasets/air", params={"column": "station", "value": "天坛"})
    print(r.status_code, re.search(r'id="preview-total">(.*?)<', r.text), r.text.count("<tr>"))
    nxt = re.search(r'href="([^"]*)" id="next-page"', r.text)
    print(nxt and nxt.group(1))
    r = c.get(nxt.group(1).replace("&amp;", "&"))
    print(r.status_code, re.search(r'id="preview-total">(.*?)<', r.text), re.search(r'id="preview-error">(.*?)<', r.text))
    r = c.get("/opendata/datasets/air", params={"order": "pm25 DESC"})
    links = re.findall(r'<a href="([^"]*)" data-sort="([^"]*)"', r.text)
    print(links)
    r = c.get("/opendata/datasets/air", params={"column": "nope", "value": "1"})
    print(r.status_code, re.search(r'id="preview-error">(.*?)<', r.text))
    r = c.get("/opendata/datasets/air", params={"next": "garbage"})
    print(r.status_code, re.search(r'id="preview-error">(.*?)<', r.text))
    r = c.get("/opendata/datasets/air", params={"version": "9"})
    print(r.status_code, r.text[:300])
    r = c.get("/opendata/datasets/air", params={"version": "abc"})
    print(r.status_code, r.text[:300])
    r = c.get("/opendata/datasets/nope")
    print(r.status_code, r.text[:300])
