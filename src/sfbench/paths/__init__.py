"""Gaussian probability paths: schedules and conversions between predictions."""

from sfbench.paths.parameterization import (
    TARGETS,
    Prediction,
    conditional_target,
    convert,
    to_x0_eps,
)
from sfbench.paths.schedules import (
    SCHEDULES,
    DDPMSchedule,
    OTSchedule,
    RectifiedFlowSchedule,
    Schedule,
    ScheduleOutput,
    VESchedule,
    VPSchedule,
)

__all__ = [
    "SCHEDULES",
    "TARGETS",
    "DDPMSchedule",
    "OTSchedule",
    "Prediction",
    "RectifiedFlowSchedule",
    "Schedule",
    "ScheduleOutput",
    "VESchedule",
    "VPSchedule",
    "conditional_target",
    "convert",
    "to_x0_eps",
]
