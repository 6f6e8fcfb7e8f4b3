"""Listings: provider staff create, edit, publish and withdraw them; every field is checked by name;
slots and stock batches; photos without metadata; search text kept up to date; all audited."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO
from typing import Any

import pytest
from PIL import ExifTags, Image
from sqlalchemy import func, select

from services.sworld import HOURLY, MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.audit.models import AuditEvent
from zhishe.core.errors import Conflict, Forbidden, Invalid, NotFound
from zhishe.services import listings, providers
from zhishe.services.models import Listing, ListingPhoto, Slot


def _data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title_zh": "深度保洁",
        "title_en": "Deep cleaning",
        "description_zh": "厨房卫生间深度清洁",
        "category": "housekeeping",
        "process": "instant_booking",
        "price_rules": HOURLY,
    }
    data.update(extra)
    return data


def _create(sw: ServicesWorld, user: str = "clean-staff", **extra: Any) -> Listing:
    return listings.create(sw.session, actor=sw.actor(user), data=_data(**extra))


def test_staff_create_a_draft_then_publish_and_withdraw_it_all_audited(sw: ServicesWorld) -> None:
    listing = _create(sw)
    assert (listing.status, listing.provider_id) == ("draft", sw.providers["clean"].id)
    assert listing.cancellation_policy == listings.DEFAULT_POLICY
    assert "深度保洁" in listing.search_text and "deep cleaning" in listing.search_text
    assert "家政保洁" in listing.search_text and "洁家家政" in listing.search_text
    listings.publish(sw.session, actor=sw.actor("clean-staff"), listing_id=listing.id)
    assert listing.status == "active"
    with pytest.raises(Conflict):
        listings.publish(sw.session, actor=sw.actor("clean-staff"), listing_id=listing.id)
    listings.withdraw(sw.session, actor=sw.actor("clean-admin"), listing_id=listing.id)
    assert listing.status == "withdrawn"
    actions = set(
        sw.session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "services_listing"))
    )
    assert {"services.listing.create", "services.listing.publish", "services.listing.withdraw"} <= actions


def test_another_providers_staff_cannot_edit_publish_or_add_slots_to_your_listing(sw: ServicesWorld) -> None:
    listing = _create(sw)
    fixer = sw.actor("fix-admin")
    with pytest.raises(Forbidden):
        listings.update(sw.session, actor=fixer, listing_id=listing.id, data={"title_zh": "被改了"})
    with pytest.raises(Forbidden):
        listings.publish(sw.session, actor=fixer, listing_id=listing.id)
    with pytest.raises(Forbidden):
        listings.add_slot(
            sw.session,
            actor=fixer,
            listing_id=listing.id,
            starts_at=MONDAY + timedelta(days=1),
            ends_at=MONDAY + timedelta(days=1, hours=2),
        )
    with pytest.raises(Forbidden):
        listings.create(sw.session, actor=fixer, data=_data(), provider_id=sw.providers["clean"].id)
    assert listing.title_zh == "深度保洁"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title_zh": ""}, "title_zh"),
        ({"category": "repair"}, "category"),  # not one of the provider's categories
        ({"process": "auction"}, "process"),
        ({"availability": "sometimes"}, "availability"),
        ({"price_rules": {"unit": "hour", "unit_fen": -100}}, "price_rules.unit_fen"),
        ({"cancellation_policy": {"free_until_hours": -1}}, "cancellation_policy.free_until_hours"),
        ({"cancellation_policy": {"late_fee_bps": 10_001}}, "cancellation_policy.late_fee_bps"),
        ({"cancellation_policy": {"refund_everything": True}}, "cancellation_policy"),
        ({"settings": ["not", "an", "object"]}, "settings"),
        ({"settings": {"blob": "x" * 9000}}, "settings"),
    ],
)
def test_bad_listing_fields_are_refused_by_name_and_nothing_is_written(
    sw: ServicesWorld, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        _create(sw, **change)
    sw.session.rollback()
    assert caught.value.detail["field"] == field
    assert sw.session.scalar(select(func.count()).select_from(Listing)) == 0


def test_publishing_needs_the_categorys_licence_and_an_active_provider(sw: ServicesWorld) -> None:
    listing = _create(sw)
    with clock.frozen(MONDAY + timedelta(days=400)), pytest.raises(Conflict) as caught:
        listings.publish(sw.session, actor=sw.actor("clean-staff"), listing_id=listing.id)
    assert listing.status == "draft" and caught.value.detail["missing_licences"] == ["housekeeping"]
    providers.suspend(
        sw.session, actor=sw.actor("op-admin"), provider_id=sw.providers["clean"].id, reason="核查"
    )
    with pytest.raises(Conflict):
        listings.publish(sw.session, actor=sw.actor("clean-staff"), listing_id=listing.id)
    assert listing.status == "draft"


def test_editing_keeps_search_text_current_and_renaming_the_provider_updates_it(sw: ServicesWorld) -> None:
    listing = _create(sw)
    listings.update(
        sw.session,
        actor=sw.actor("clean-staff"),
        listing_id=listing.id,
        data={"title_zh": "开荒保洁", "title_en": "Move-in CLEAN"},
    )
    assert "开荒保洁" in listing.search_text and "move-in clean" in listing.search_text
    assert "深度保洁" not in listing.search_text
    providers.update(
        sw.session,
        actor=sw.actor("clean-admin"),
        provider_id=sw.providers["clean"].id,
        data={"name_zh": "洁净到家"},
    )
    assert "洁净到家" in listing.search_text


def test_drafts_are_hidden_from_residents_but_shown_to_the_provider_and_operator(sw: ServicesWorld) -> None:
    listing = _create(sw)
    with pytest.raises(NotFound):
        listings.get_visible(sw.session, actor=sw.actor("res1"), listing_id=listing.id)
    assert listings.get_visible(sw.session, actor=sw.actor("clean-staff"), listing_id=listing.id) is listing
    assert listings.get_visible(sw.session, actor=sw.actor("op-dispatcher"), listing_id=listing.id) is listing
    listings.publish(sw.session, actor=sw.actor("clean-staff"), listing_id=listing.id)
    assert listings.get_visible(sw.session, actor=sw.actor("res1"), listing_id=listing.id) is listing


def test_a_slot_must_end_after_it_starts_not_be_in_the_past_and_hold_1_to_1000(sw: ServicesWorld) -> None:
    listing = _create(sw)
    staff = sw.actor("clean-staff")
    tomorrow = MONDAY + timedelta(days=1)
    cases = [
        ({"starts_at": tomorrow, "ends_at": tomorrow - timedelta(hours=1)}, "ends_at"),
        ({"starts_at": tomorrow, "ends_at": tomorrow}, "ends_at"),
        ({"starts_at": MONDAY - timedelta(hours=2), "ends_at": MONDAY - timedelta(hours=1)}, "starts_at"),
        ({"starts_at": tomorrow, "ends_at": tomorrow + timedelta(hours=2), "capacity": 0}, "capacity"),
        ({"starts_at": tomorrow, "ends_at": tomorrow + timedelta(hours=2), "capacity": 1001}, "capacity"),
        ({"starts_at": "soon", "ends_at": tomorrow}, "starts_at"),
    ]
    for args, field in cases:
        with pytest.raises(Invalid) as caught:
            listings.add_slot(sw.session, actor=staff, listing_id=listing.id, **args)
        assert caught.value.detail["field"] == field
    assert sw.session.scalar(select(func.count()).select_from(Slot)) == 0
    slot = listings.add_slot(
        sw.session,
        actor=staff,
        listing_id=listing.id,
        starts_at="2026-11-03T09:00",
        ends_at="2026-11-03T11:00+08:00",
        capacity=3,
    )
    assert slot.starts_at == MONDAY + timedelta(hours=23)  # naive input is platform time
    [view] = listings.list_slots(sw.session, listing_id=listing.id)
    assert (view.slot.id, view.free) == (slot.id, 3)


def test_a_weekly_pattern_adds_slots_on_chosen_days_and_skips_the_past_and_duplicates(
    sw: ServicesWorld,
) -> None:
    listing = _create(sw)
    staff = sw.actor("clean-staff")
    args = {
        "weekdays": [1, 3],
        "start_time": "09:00",
        "end_time": "11:00",
        "from_date": "2026-11-02",
        "until_date": "2026-11-15",
        "capacity": 2,
    }
    slots = listings.add_weekly_slots(sw.session, actor=staff, listing_id=listing.id, **args)
    # Monday 2 Nov 09:00 is already past (it is 10:00); then Wed 4, Mon 9, Wed 11
    assert [s.starts_at.astimezone(MONDAY.tzinfo).day for s in slots] == [4, 9, 11]
    assert listings.add_weekly_slots(sw.session, actor=staff, listing_id=listing.id, **args) == []
    with pytest.raises(Invalid) as caught:
        listings.add_weekly_slots(
            sw.session, actor=staff, listing_id=listing.id, **{**args, "end_time": "08:00"}
        )
    assert caught.value.detail["field"] == "end_time"
    with pytest.raises(Invalid) as caught:
        listings.add_weekly_slots(sw.session, actor=staff, listing_id=listing.id, **{**args, "weekdays": [0]})
    assert caught.value.detail["field"] == "weekdays"


def test_full_slots_are_left_out_when_only_free_ones_are_asked(sw: ServicesWorld) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping")
    full = sw.slot(listing, MONDAY + timedelta(days=1))
    free = sw.slot(listing, MONDAY + timedelta(days=2), capacity=2)
    full.booked = 1
    sw.session.commit()
    views = listings.list_slots(sw.session, listing_id=listing.id, free_only=True)
    assert [v.slot.id for v in views] == [free.id]


def test_stock_batches_only_for_stock_listings(sw: ServicesWorld) -> None:
    farm = sw.actor("farm-admin")
    veg = listings.create(
        sw.session,
        actor=farm,
        data=_data(
            title_zh="有机蔬菜箱",
            category="fresh_food",
            availability="stock",
            price_rules={"unit": "box", "unit_fen": 8800, "min_units": 1, "surcharges": []},
        ),
    )
    batch = listings.add_batch(
        sw.session, actor=farm, listing_id=veg.id, quantity="40", label="11月第1批", best_before="2026-11-10"
    )
    assert (batch.quantity, batch.remaining) == (40, 40)
    assert [b.id for b in listings.list_batches(sw.session, listing_id=veg.id)] == [batch.id]
    with pytest.raises(Invalid) as caught:
        listings.add_batch(sw.session, actor=farm, listing_id=veg.id, quantity=-3)
    assert caught.value.detail["field"] == "quantity"
    with pytest.raises(Conflict):
        listings.add_slot(
            sw.session,
            actor=farm,
            listing_id=veg.id,
            starts_at=MONDAY + timedelta(days=1),
            ends_at=MONDAY + timedelta(days=1, hours=1),
        )
    cleaning = _create(sw)
    with pytest.raises(Conflict):
        listings.add_batch(sw.session, actor=sw.actor("clean-staff"), listing_id=cleaning.id, quantity=5)


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitude] = (39.0, 54.0, 15.0)
    out = BytesIO()
    Image.new("RGB", (24, 16), (10, 200, 10)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_photos_are_stored_without_exif_and_at_most_five(sw: ServicesWorld) -> None:
    listing = _create(sw)
    staff = sw.actor("clean-staff")
    raw = _jpeg_with_gps()
    assert b"SpyCam" in raw
    for _ in range(listings.MAX_PHOTOS):
        photo = listings.add_photo(sw.session, actor=staff, listing_id=listing.id, data=raw)
    assert b"SpyCam" not in photo.content and photo.content_type == "image/jpeg"
    with pytest.raises(Conflict):
        listings.add_photo(sw.session, actor=staff, listing_id=listing.id, data=raw)
    with pytest.raises(Invalid):
        listings.delete_photo(sw.session, actor=staff, photo_id=photo.id) or listings.add_photo(
            sw.session, actor=staff, listing_id=listing.id, data=b"%PDF-1.4 not a photo"
        )
    assert sw.session.scalar(select(func.count()).select_from(ListingPhoto)) == listings.MAX_PHOTOS - 1
