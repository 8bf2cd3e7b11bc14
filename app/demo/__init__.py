"""Demo data: a deterministic 月湖区 (Yuehu district, Yingtan) with areas, grids and buildings."""

from app.demo.district import (
    DemoArea,
    DemoBuilding,
    DemoDistrict,
    DemoGrid,
    generate_district,
)

__all__ = ["DemoArea", "DemoBuilding", "DemoDistrict", "DemoGrid", "generate_district"]
