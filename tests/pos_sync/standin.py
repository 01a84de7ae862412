"""Starting the Square stand-in for tests, and the timings the timeout tests share."""

import socket

from sandbox.core import RunningStandIn
from sandbox.square import SquareStandIn

# For timeout tests: the client gives up after SHORT_TIMEOUT, the stand-in answers after LATE.
# Generous on purpose: a loaded CI box must not turn an ordinary answer into a timeout.
SHORT_TIMEOUT = 1.0
LATE = 2.0


def start_square() -> RunningStandIn:
    running = RunningStandIn(SquareStandIn())
    # Accepted sockets inherit TCP_NODELAY from the listener. Without it every keep-alive request
    # stalls ~40 ms (Nagle on the handler's separate header and body writes meets delayed ACK),
    # which would turn the 1,000-job drain into minutes of waiting on the stand-in.
    running.server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return running
