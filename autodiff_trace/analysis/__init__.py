"""Analysis: findings read from the event stream, and gradients checked by central differences."""

from .diagnoser import Diagnoser, diagnose
from .gradcheck import GradcheckError, check_grads

__all__ = ["Diagnoser", "diagnose", "check_grads", "GradcheckError"]
