#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from core.context import acting_system

    # The field-change trail names the command as the actor of what it writes (`command:shell`
    # too): a change made from a terminal is attributed, not anonymous.
    acting_system.set(f"command:{sys.argv[1]}" if len(sys.argv) > 1 else "command")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
