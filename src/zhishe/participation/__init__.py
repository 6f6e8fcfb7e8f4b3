"""Citizen participation and rapid response: Open311 reports, SLA work orders, suggestions and
emergency incidents.

Tables (``models.py``): service categories (Open311 services) with their attributes and SLAs,
teams and routing rules, requests (a report and the work order it becomes), their timeline,
"me too" supports, photos, Open311 API keys, suggestions and incidents.

Rules live in plain modules: ``service`` (reports and the work-order state machine), ``routing``,
``sla`` (deadlines on the working-day calendar), ``escalation`` (the escalation ladder sweep),
``photos`` (checked, EXIF-free photos), ``suggestions``, ``incidents`` and ``measures`` (the figures
that feed evaluation). Standards: Open311 GeoReport v2 with FixMyStreet's extensions at
``/open311/v2`` (``open311``).
"""
