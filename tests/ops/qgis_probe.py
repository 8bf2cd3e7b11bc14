"""Run by Debian's QGIS Python (`/usr/bin/python3`, package python3-qgis), headless: load the
OGC API collection and the vector tile layer the way an analyst adds them in QGIS (the OAPIF and
vectortile providers), read the features, render the tiles, print what QGIS saw as JSON.

    python3 qgis_probe.py OGC_URL COLLECTION TILE_TEMPLATE MIN_LON MIN_LAT MAX_LON MAX_LAT [HEADER]

TILE_TEMPLATE is an XYZ template ({z}/{x}/{y}); HEADER, when given, is sent as the
`Authorization` header of the OGC requests (QGIS's "API header" authentication does the same)."""

from __future__ import annotations

import faulthandler
import json
import os
import sys
from urllib.parse import quote

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
faulthandler.enable()

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
    QgsVectorTileLayer,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


def main() -> int:
    ogc, collection, template = sys.argv[1:4]
    bbox = [float(v) for v in sys.argv[4:8]]
    header = sys.argv[8] if len(sys.argv) > 8 else None
    app = QgsApplication([], False)
    app.initQgis()
    out: dict[str, object] = {}

    uri = f"url='{ogc}' typename='{collection}'"
    if header:
        uri += f" http-header:Authorization='{header}'"
    layer = QgsVectorLayer(uri, collection, "OAPIF")
    out["ogc_valid"] = layer.isValid()
    if layer.isValid():
        feats = list(layer.getFeatures())
        out["ogc_features"] = len(feats)
        out["ogc_fields"] = [f.name() for f in layer.fields()]
        out["ogc_with_geometry"] = sum(1 for f in feats if f.hasGeometry())
    else:
        out["ogc_error"] = layer.error().summary()

    tiles = QgsVectorTileLayer(f"type=xyz&url={quote(template, safe='')}&zmin=0&zmax=16", "tiles")
    out["tiles_valid"] = tiles.isValid()
    if tiles.isValid():
        QgsProject.instance().addMapLayer(tiles)
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        merc = QgsCoordinateReferenceSystem("EPSG:3857")
        extent = QgsCoordinateTransform(wgs84, merc, QgsProject.instance()).transformBoundingBox(
            QgsRectangle(*bbox)
        )
        settings = QgsMapSettings()
        settings.setLayers([tiles])
        settings.setDestinationCrs(merc)
        settings.setExtent(extent)
        settings.setOutputSize(QSize(512, 512))
        settings.setBackgroundColor(QColor(255, 255, 255, 0))
        job = QgsMapRendererSequentialJob(settings)
        job.start()
        job.waitForFinished()
        image = job.renderedImage()
        painted = 0
        for y in range(0, image.height(), 2):
            for x in range(0, image.width(), 2):
                if image.pixelColor(x, y).alpha() > 0:
                    painted += 1
        out["tiles_painted_pixels"] = painted
        out["tiles_errors"] = [e.message for e in job.errors()]
    print(json.dumps(out), flush=True)
    # QGIS 3.22 may crash while tearing its providers down after the work is done: the answer
    # is printed, leave without the teardown.
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
