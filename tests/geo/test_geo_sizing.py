"""geo.sizing: household bands per grid kind."""

from __future__ import annotations

from dataclasses import asdict

from geo.sizing import GridSize, SizingBand, check_sizing


def grid(kind: str, households: int | None, notes: str | None = None, n: int = 1) -> GridSize:
    return GridSize(
        id=str(n),
        code=f"3630602001{n:02d}",
        name=f"网格{n}",
        kind=kind,
        households=households,
        population=None if households is None else households * 3,
        notes=notes,
    )


def reasons(grids: list[GridSize], band: SizingBand | None = None) -> list[str]:
    return [f.code_ for f in check_sizing(grids, band or SizingBand())]


def test_default_band() -> None:
    b = SizingBand()
    assert (b.city_min, b.city_max, b.rural_min, b.rural_max) == (250, 350, 30, 300)
    assert asdict(b) == b.__dict__


def test_in_band_grids_pass() -> None:
    grids = [
        grid("city", 300),
        grid("city", 250),
        grid("city", 350),
        grid("rural", 30),
        grid("rural", 120),
        grid("rural", 300),
        grid("special", None, notes="鹰潭市第一中学"),
    ]
    assert check_sizing(grids, SizingBand()) == []


def test_city_too_many_and_too_few() -> None:
    [f] = check_sizing([grid("city", 420, n=7)], SizingBand())
    assert "420" in f.message and "420" in f.message_en, (f.message, f.message_en)
    assert (f.id, f.code, f.name, f.kind) == ("7", "363060200107", "网格7", "city")
    assert f.code_ == f.reason == "too_many_households"
    assert (f.value, f.expected_min, f.expected_max) == (420, 250, 350)
    assert "420" in f.message and "420" in f.message_en
    assert reasons([grid("city", 249)]) == ["too_few_households"]


def test_rural_band() -> None:
    assert reasons([grid("rural", 29)]) == ["too_few_households"]
    assert reasons([grid("rural", 301)]) == ["too_many_households"]


def test_missing_households() -> None:
    [f] = check_sizing([grid("city", None)], SizingBand())
    assert f.code_ == "missing_households" and f.value is None
    assert reasons([grid("rural", None)]) == ["missing_households"]


def test_special_needs_institution_not_households() -> None:
    assert reasons([grid("special", 5000, notes="鹰潭高新区工业园")]) == []
    assert reasons([grid("special", None, notes=None)]) == ["special_without_institution"]
    assert reasons([grid("special", 10, notes="   ")]) == ["special_without_institution"]


def test_custom_band_and_order() -> None:
    band = SizingBand(city_min=100, city_max=200)
    grids = [grid("city", 250, n=1), grid("city", 150, n=2), grid("city", 50, n=3)]
    found = check_sizing(grids, band)
    assert [(f.id, f.code_) for f in found] == [
        ("1", "too_many_households"),
        ("3", "too_few_households"),
    ]
    assert found[0].expected_max == 200


def test_unknown_kind_and_chinese_aliases() -> None:
    assert reasons([grid("mystery", 300)]) == ["unknown_kind"]
    assert reasons([grid("城市", 1000)]) == ["too_many_households"]
    assert reasons([grid("专属网格", None, notes="人民医院")]) == []
