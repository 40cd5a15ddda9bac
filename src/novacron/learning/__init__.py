"""Remediation-policy learning: which repair heals which fault (pure computation, no I/O).

One contract for every policy — ``choose(context, allowed) -> (action, propensity)`` and
``update(context, action, reward)`` — with the static ladder as one policy among them
(:class:`LadderPolicy`) and a contextual bandit that starts from it as its prior
(:class:`ThompsonPolicy`, linear Thompson sampling), and the Q-network a DQN learned on
the twin (:class:`DqnPolicy`; training needs the ``ml`` extra). :mod:`~novacron.learning.ope`
scores a policy offline on logged decisions (inverse propensity, doubly robust).
"""

from novacron.learning.context import FaultContext, answers_slowed, detail_class, features, host_state
from novacron.learning.dqn import DqnPolicy
from novacron.learning.ope import OpeEstimate, Record, doubly_robust, ips
from novacron.learning.policies import (
    STATE_VERSION,
    Choice,
    LadderPolicy,
    RemediationPolicy,
    ThompsonPolicy,
    policy_from_state,
)
from novacron.learning.reward import RewardWeights, reward

__all__ = [
    "STATE_VERSION",
    "Choice",
    "DqnPolicy",
    "FaultContext",
    "LadderPolicy",
    "OpeEstimate",
    "Record",
    "RemediationPolicy",
    "RewardWeights",
    "ThompsonPolicy",
    "answers_slowed",
    "detail_class",
    "doubly_robust",
    "features",
    "host_state",
    "ips",
    "policy_from_state",
    "reward",
]
