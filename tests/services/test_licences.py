"""Licences: files are sniffed and size-limited, downloads are for the provider and the operator
only (and audited), the sweep reminds once 30 days ahead, suspends listings whose required licence
lapsed, and an upload of a valid licence reinstates them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from services.sworld import MONDAY, ServicesWorld
from zhishe.core import clock
from zhishe.core.audit.models import AuditEvent
from zhishe.core.errors import Forbidden, Invalid, TooLarge
from zhishe.core.notifications.models import Notification
from zhishe.services import licences, providers
from zhishe.services.models import Licence

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
YEAR_END = date(2027, 12, 31)


def _count(sw: ServicesWorld, model: type, *where: object) -> int:
    return sw.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _upload(sw: ServicesWorld, data: bytes = PDF, user: str = "clean-admin", **extra: object) -> Licence:
    args: dict[str, object] = {
        "kind": "housekeeping",
        "number": "HK-2027",
        "expires_on": YEAR_END,
        "filename": "hk.pdf",
    }
    args.update(extra)
    return licences.upload(
        sw.session,
        actor=sw.actor(user),
        provider_id=sw.providers["clean"].id,
        data=data,
        **args,  # type: ignore[arg-type]
    )


def test_a_pdf_or_png_licence_is_stored_with_its_sniffed_type(sw: ServicesWorld) -> None:
    pdf = _upload(sw, filename="../../etc/证书.pdf")
    png = _upload(sw, PNG, kind="medical", filename="scan.png")
    assert (pdf.content_type, pdf.filename) == ("application/pdf", "证书.pdf")
    assert png.content_type == "image/png"
    assert _count(sw, AuditEvent, AuditEvent.action == "services.licence.upload") == 2


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00 this is a Windows program renamed to licence.pdf",
        b"<html><script>alert(1)</script></html>",
        b"GIF89a......",
    ],
)
def test_a_file_that_is_not_really_a_pdf_or_image_is_refused_and_nothing_is_stored(
    sw: ServicesWorld, data: bytes
) -> None:
    before = _count(sw, Licence)
    with pytest.raises(Invalid) as caught:
        _upload(sw, data, filename="licence.pdf")
    assert caught.value.detail["field"] == "file"
    assert _count(sw, Licence) == before


def test_empty_and_oversized_files_and_bad_dates_are_refused_by_name(sw: ServicesWorld) -> None:
    with pytest.raises(Invalid) as empty:
        _upload(sw, b"")
    with pytest.raises(TooLarge) as large:
        _upload(sw, PDF + b"0" * licences.MAX_BYTES)
    with pytest.raises(Invalid) as past:
        _upload(sw, expires_on=date(2026, 1, 1))
    with pytest.raises(Invalid) as backwards:
        _upload(sw, valid_from=date(2028, 1, 1))
    with pytest.raises(Invalid) as kind:
        _upload(sw, kind="Food; DROP")
    assert [e.value.detail["field"] for e in (empty, large, past, backwards, kind)] == [
        "file",
        "file",
        "expires_on",
        "valid_from",
        "kind",
    ]


def test_only_the_providers_staff_and_the_operator_may_download_and_each_read_is_audited(
    sw: ServicesWorld,
) -> None:
    licence = _upload(sw)
    for user in ("clean-staff", "op-analyst"):
        assert licences.get_file(sw.session, actor=sw.actor(user), licence_id=licence.id).content == PDF
    for user in ("fix-admin", "res1"):
        with pytest.raises(Forbidden):
            licences.get_file(sw.session, actor=sw.actor(user), licence_id=licence.id)
    with pytest.raises(Forbidden):
        _upload(sw, user="fix-admin")
    assert _count(sw, AuditEvent, AuditEvent.action == "services.licence.download") == 2
    listed = licences.list_licences(
        sw.session, actor=sw.actor("clean-staff"), provider_id=sw.providers["clean"].id
    )
    assert [lic.kind for lic in listed][-1] == "housekeeping"


def test_the_sweep_reminds_the_provider_once_thirty_days_before_expiry(sw: ServicesWorld) -> None:
    provider = sw.providers["fix"]
    sw.licence(provider, "repair", (MONDAY + timedelta(days=40)).date())
    assert licences.sweep(sw.session, MONDAY)["reminded"] == 0
    later = MONDAY + timedelta(days=11)
    assert licences.sweep(sw.session, later)["reminded"] == 1
    assert licences.sweep(sw.session, later + timedelta(days=1))["reminded"] == 0
    notes = _count(
        sw,
        Notification,
        Notification.user_id == sw.users["fix-admin"].id,
        Notification.kind == "services.licence",
    )
    assert notes == 1


def test_a_lapsed_licence_suspends_listings_and_a_new_upload_reinstates_them(sw: ServicesWorld) -> None:
    provider = sw.providers["clean"]
    cleaning = sw.listing(provider, "housekeeping")
    visits = sw.listing(provider, "elderly_visit", title_zh="上门助老")
    lapsed = MONDAY + timedelta(days=400)
    with clock.frozen(lapsed):
        counts = licences.sweep(sw.session, lapsed)
        assert counts["suspended"] == 2
        assert (cleaning.status, cleaning.suspended_reason) == ("suspended", "licence:housekeeping")
        assert visits.suspended_reason == "licence:medical"
        assert _count(sw, Notification, Notification.user_id == sw.users["clean-staff"].id) >= 1
        _upload(sw, expires_on=(lapsed + timedelta(days=365)).date())
        assert (cleaning.status, cleaning.suspended_reason) == ("active", "")
        assert visits.status == "suspended"  # its medical licence is still lapsed
        providers.check_can_sell(sw.session, cleaning)
        assert licences.sweep(sw.session, lapsed) == {"reminded": 0, "suspended": 0, "reinstated": 0}
    assert _count(sw, AuditEvent, AuditEvent.action == "services.listing.suspend") == 2
    assert _count(sw, AuditEvent, AuditEvent.action == "services.listing.reinstate") == 1


def test_a_withdrawn_listing_is_not_reinstated_by_a_licence(sw: ServicesWorld) -> None:
    listing = sw.listing(sw.providers["clean"], "housekeeping", status="withdrawn")
    with clock.frozen(MONDAY + timedelta(days=400)):
        licences.sweep(sw.session)
        _upload(sw, expires_on=date(2028, 12, 31))
    assert listing.status == "withdrawn"
