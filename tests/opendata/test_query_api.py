from opendata.open_world import OpenWorld

def test_x(ow: OpenWorld) -> None:
    ow.open_air()
    for p in [{"$select": "date_trunc_ymd(observed_at) as day, count(*) as n", "$group": "date_trunc_ymd(observed_at)", "$order": "day"},
              {"$where": "observed_at >= '2026-09-02'", "$limit": "2"},
              {"$where": "observed_at >= '2026-09-02T00:00:00+08:00'", "$limit": "2"},
              {"observed_at": "2026-09-01T00:00:00+08:00"},
              {"observed_at": "2026-09-01T00:00:00"},
              ]:
        r = ow.query(**p)
        print(r.status_code, r.text[:600])
    r = ow.client.get("/opendata/api/v1/sql", params={"query": "select typeof(observed_at) t, current_setting('TimeZone') z from air limit 1"})
    print(r.text)
    r = ow.client.get("/opendata/api/v1/sql", params={"query": "select typeof(observed_at) t from air limit 1"})
    print(r.text)
