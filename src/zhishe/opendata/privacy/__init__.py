"""The privacy engine of open data: pure functions from an internal table to a public release.

No database, no HTTP, no clock: inputs and outputs are Arrow tables. The service layer parses a
stored policy (`parse_policy`), asks which columns it leaves unhandled (`unhandled`), and then
releases either a k-anonymous table (`anonymise`, Mondrian over the quasi-identifiers, with a
`RiskReport`) or differentially private aggregates (`dp_aggregate`, through OpenDP; `dp_release` for a policy's `dp` model).
`information_loss` measures any tool's output by the same NCP and discernibility definitions.
"""

from zhishe.opendata.privacy.anonymise import Anonymised, anonymise, dp_release
from zhishe.opendata.privacy.dp import DPResult, Measure, MeasureNoise, check_epsilon, dp_aggregate
from zhishe.opendata.privacy.hierarchy import ROOT, Hierarchy
from zhishe.opendata.privacy.policy import (
    COLUMN_TYPES,
    DPModel,
    KAnonymity,
    NoModel,
    Policy,
    Rule,
    parse_policy,
    unhandled,
)
from zhishe.opendata.privacy.risk import InformationLoss, RiskReport, information_loss, risk_report
from zhishe.opendata.privacy.rules import MIN_KEY_BYTES, apply_rules, pseudonym

__all__ = [
    "COLUMN_TYPES",
    "MIN_KEY_BYTES",
    "ROOT",
    "Anonymised",
    "DPModel",
    "DPResult",
    "Hierarchy",
    "InformationLoss",
    "KAnonymity",
    "Measure",
    "MeasureNoise",
    "NoModel",
    "Policy",
    "RiskReport",
    "Rule",
    "anonymise",
    "apply_rules",
    "check_epsilon",
    "dp_aggregate",
    "dp_release",
    "information_loss",
    "parse_policy",
    "pseudonym",
    "risk_report",
    "unhandled",
]
