"""The statements that place an object named in a request's path in the area tree: its grid,
its chain of areas (community → street → district → city), its owner and (for a case) the
departments it was dispatched to. Used only by `app.auth.scope` (`object_chain`), which decides
what the place means for the caller."""

from __future__ import annotations

from sqlalchemy import text

_CHAIN = """
WITH start AS MATERIALIZED ({start})
SELECT (SELECT grid_id FROM start) AS grid_id,
       (SELECT array_remove(ARRAY[a1.id, a2.id, a3.id, a4.id], NULL)
        FROM start s JOIN areas a1 ON a1.id = s.area_id
        LEFT JOIN areas a2 ON a2.id = a1.parent_id
        LEFT JOIN areas a3 ON a3.id = a2.parent_id
        LEFT JOIN areas a4 ON a4.id = a3.parent_id) AS chain,
       EXISTS (SELECT 1 FROM start) AS found, (SELECT owner_id FROM start) AS owner_id,
       {departments} AS departments
"""
"""The area tree has four levels (city, district, street, community: the `level` check of
`areas`), so an object's chain is at most four joins up: no recursive CTE, which Citus runs only
with a filter on the distribution column."""
_NO_DEPTS = "'{}'::bigint[]"
_CASE_DEPTS = (
    "array(SELECT department_id FROM case_assignments WHERE state <> 'withdrawn' "
    "AND case_id = (SELECT case_id FROM start) AND district_id = (SELECT district_id FROM start))"
)
_PERSON_DEPTS = (
    "array(SELECT a.department_id FROM case_persons cp JOIN case_assignments a "
    "ON a.case_id = cp.case_id AND a.district_id = cp.district_id AND a.state <> 'withdrawn' "
    "WHERE cp.district_id = (SELECT district_id FROM start) "
    "AND (cp.resident_id = (SELECT resident_id FROM start) "
    "OR cp.household_id = (SELECT household_id FROM start)))"
)
"""A household or a person (base data): the departments handling a case that names it (or, for
a person, their household)."""
CHAINS = {
    "area_id": text(
        _CHAIN.format(
            start="SELECT id AS area_id, NULL::bigint AS grid_id, NULL::bigint AS owner_id "
            "FROM areas WHERE id = :id",
            departments=_NO_DEPTS,
        )
    ),
    "grid_id": text(
        _CHAIN.format(
            start="SELECT community_id AS area_id, id AS grid_id, NULL::bigint AS owner_id "
            "FROM grids WHERE id = :id AND deleted_at IS NULL",
            departments=_NO_DEPTS,
        )
    ),
    "building_id": text(
        _CHAIN.format(
            start="SELECT g.community_id AS area_id, g.id AS grid_id, NULL::bigint AS owner_id "
            "FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE b.id = :id",
            departments=_NO_DEPTS,
        )
    ),
    "case_id": text(
        _CHAIN.format(
            start="SELECT coalesce(community_id, street_id, district_id) AS area_id, grid_id, "
            "reporter_id AS owner_id, id AS case_id, district_id FROM cases WHERE id = :id",
            departments=_CASE_DEPTS,
        )
    ),
    "patrol_id": text(
        _CHAIN.format(
            start="SELECT community_id AS area_id, grid_id, worker_id AS owner_id "
            "FROM patrols WHERE id = :id",
            departments=_NO_DEPTS,
        )
    ),
    "checkpoint_id": text(
        _CHAIN.format(
            start="SELECT community_id AS area_id, grid_id, NULL::bigint AS owner_id "
            "FROM checkpoints WHERE id = :id",
            departments=_NO_DEPTS,
        )
    ),
    "visit_id": text(
        _CHAIN.format(
            start="SELECT community_id AS area_id, grid_id, worker_id AS owner_id "
            "FROM visits WHERE id = :id",
            departments=_NO_DEPTS,
        )
    ),
    "attachment_id": text(
        _CHAIN.format(
            start="SELECT coalesce(c.community_id, c.street_id, c.district_id) AS area_id, "
            "c.grid_id, c.reporter_id AS owner_id, c.id AS case_id, c.district_id "
            "FROM attachments a JOIN cases c ON c.id = a.case_id AND c.district_id = a.district_id "
            "WHERE a.id = :id",
            departments=_CASE_DEPTS,
        )
    ),
    "house_id": text(
        _CHAIN.format(
            start="SELECT g.community_id AS area_id, g.id AS grid_id, NULL::bigint AS owner_id "
            "FROM houses h JOIN buildings b ON b.id = h.building_id JOIN grids g ON g.id = b.grid_id "
            "WHERE h.id = :id",
            departments=_NO_DEPTS,
        )
    ),
    "household_id": text(
        _CHAIN.format(
            start="SELECT g.community_id AS area_id, g.id AS grid_id, NULL::bigint AS owner_id, "
            "hh.id AS household_id, NULL::bigint AS resident_id, hh.district_id "
            "FROM households hh JOIN houses h ON h.id = hh.house_id AND h.district_id = hh.district_id "
            "JOIN buildings b ON b.id = h.building_id JOIN grids g ON g.id = b.grid_id "
            "WHERE hh.id = :id",
            departments=_PERSON_DEPTS,
        )
    ),
    "resident_id": text(
        _CHAIN.format(
            start="SELECT g.community_id AS area_id, g.id AS grid_id, NULL::bigint AS owner_id, "
            "r.household_id, r.id AS resident_id, r.district_id "
            "FROM residents r JOIN households hh ON hh.id = r.household_id "
            "AND hh.district_id = r.district_id "
            "JOIN houses h ON h.id = hh.house_id AND h.district_id = hh.district_id "
            "JOIN buildings b ON b.id = h.building_id JOIN grids g ON g.id = b.grid_id "
            "WHERE r.id = :id",
            departments=_PERSON_DEPTS,
        )
    ),
    "organisation_id": text(
        _CHAIN.format(
            start="SELECT g.community_id AS area_id, g.id AS grid_id, NULL::bigint AS owner_id "
            "FROM organisations o JOIN buildings b ON b.id = o.building_id "
            "JOIN grids g ON g.id = b.grid_id WHERE o.id = :id",
            departments=_NO_DEPTS,
        )
    ),
    "dispute_id": text(
        _CHAIN.format(
            start="SELECT community_id AS area_id, grid_id, reported_by AS owner_id "
            "FROM disputes WHERE id = :id",
            departments=_NO_DEPTS,
        )
    ),
}
# The same for a case whose district is known: every statement routed to the case's shard.
CASE_CHAIN_IN = text(
    _CHAIN.format(
        start="SELECT coalesce(community_id, street_id, district_id) AS area_id, grid_id, "
        "reporter_id AS owner_id, id AS case_id, district_id FROM cases "
        "WHERE id = :id AND district_id = :district",
        departments="array(SELECT department_id FROM case_assignments WHERE state <> 'withdrawn' "
        "AND case_id = :id AND district_id = :district)",
    )
)
PATH_OBJECTS = tuple(CHAINS)
"""Path parameters that name an object whose place the policy checks."""
