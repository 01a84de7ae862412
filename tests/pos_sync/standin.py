"""Starting the Square stand-in for tests, and the timings the timeout tests share."""

from sandbox.core import RunningStandIn
from sandbox.square import SquareStandIn

# For timeout tests: the client gives up after SHORT_TIMEOUT, the stand-in answers after LATE.
# Generous on purpose: a loaded CI box must not turn an ordinary answer into a timeout.
SHORT_TIMEOUT = 1.0
LATE = 2.0


def start_square() -> RunningStandIn:
    return RunningStandIn(SquareStandIn())  # TCP_NODELAY is set by RunningStandIn
