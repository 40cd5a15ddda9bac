"""Experiments: always-valid sequential tests, fixed-horizon reports, SRM, bandits and canaries.

Pure computation (no I/O): the controller's experiment runner feeds it request tallies
from the load balancer and applies its verdicts through the executor.
"""

from novacron.experiments.arms import ArmStats
from novacron.experiments.bandits import Thompson, Ucb1
from novacron.experiments.canary import CanaryPolicy, CanaryState, Move, Phase, Verdict, judge
from novacron.experiments.sequential import SequentialResult, msprt
from novacron.experiments.srm import SrmResult, srm_check
from novacron.experiments.tally import ArmWindow, Tally

__all__ = [
    "ArmStats",
    "ArmWindow",
    "CanaryPolicy",
    "CanaryState",
    "Move",
    "Phase",
    "SequentialResult",
    "SrmResult",
    "Tally",
    "Thompson",
    "Ucb1",
    "Verdict",
    "judge",
    "msprt",
    "srm_check",
]
