"""The marketplace world builds, and the accounts in it have the roles the tests rely on."""

from __future__ import annotations

from services.sworld import ServicesWorld
from zhishe.core.auth import can


def test_world_builds_with_four_providers_and_six_categories(sw: ServicesWorld) -> None:
    assert set(sw.providers) == {"clean", "fix", "farm", "far"}
    assert len(sw.categories) == 6
    assert can(sw.actor("clean-staff"), "services.provide", org_id=sw.orgs["clean"].id)
    assert not can(sw.actor("clean-staff"), "services.provide", org_id=sw.orgs["fix"].id)
    assert can(sw.actor("op-steward"), "finance.manage")
    assert not can(sw.actor("res1"), "finance.read")
