"""Pure geometry for wangge (no web framework, no database).

Modules: ``crs`` (WGS84 / GCJ-02 / BD-09 / CGCS2000), ``validate`` (untrusted GeoJSON in; with
``issues`` its codes and messages, ``points`` and ``repair``),
``geojson`` (RFC 7946 out), ``measure`` (geodesic metres), ``coverage`` (grids tile their
community: no gaps, no overlaps), ``sizing`` (households per grid).
"""
