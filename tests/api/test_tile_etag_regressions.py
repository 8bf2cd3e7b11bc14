"""A tile's bytes (and so its ETag) stay the same from run to run of its prepared statement
(past the fifth run, when PostgreSQL may switch to a generic plan): the features are aggregated
in id order. A guard: the full suite once saw a tile's If-None-Match stop matching."""

from __future__ import annotations

import mercantile

from tests.factories import point_in_grid

GRID = "360602001001001"


async def test_the_same_tile_has_the_same_etag_on_every_run(anon, conn) -> None:
    lon, lat = await point_in_grid(conn, GRID)
    t = mercantile.tile(lon, lat, 13)
    tags = set()
    for _ in range(12):
        r = await anon.get(f"/tiles/grids/13/{t.x}/{t.y}.mvt")
        assert r.status_code == 200
        tags.add(r.headers["etag"])
    assert len(tags) == 1, tags
