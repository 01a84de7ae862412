"""python -m sandbox [wise|square|stripe|all] [--host 127.0.0.1]: serve stand-ins until killed."""

import argparse
import importlib
import signal
import sys

from sandbox.core import RunningStandIn

PROVIDERS = {
    "wise": ("sandbox.wise", "WiseStandIn", 8101),
    "square": ("sandbox.square", "SquareStandIn", 8102),
    "stripe": ("sandbox.stripe", "StripeStandIn", 8103),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    parser.add_argument("provider", choices=[*PROVIDERS, "all"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="only with a single provider")
    args = parser.parse_args()
    names = list(PROVIDERS) if args.provider == "all" else [args.provider]
    running = []
    for name in names:
        module, cls, default_port = PROVIDERS[name]
        app = getattr(importlib.import_module(module), cls)()
        running.append(RunningStandIn(app, args.host, args.port if args.port and len(names) == 1 else default_port))
        print(f"{name} stand-in on {running[-1].url}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    finally:
        for server in running:
            server.stop()


if __name__ == "__main__":
    main()
