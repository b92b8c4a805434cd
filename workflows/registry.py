"""Every workflow the worker registers."""

from __future__ import annotations

from workflows.cra import CraWorkflow
from workflows.mission import MissionWorkflow
from workflows.payout import PayoutWorkflow
from workflows.provider import ProviderComplianceWorkflow

WORKFLOWS = (MissionWorkflow, ProviderComplianceWorkflow, PayoutWorkflow, CraWorkflow)
