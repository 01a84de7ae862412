"""Who performed a change: a user, or a named system job (a webhook, a beat task, a command)."""

from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser


@dataclass(frozen=True)
class SystemActor:
    name: str  # e.g. "webhook:wise", "task:push_pending_orders"

    @property
    def label(self) -> str:
        return f"system:{self.name}"


Actor = AbstractBaseUser | SystemActor


def actor_label(actor: Actor) -> str:
    if isinstance(actor, SystemActor):
        return actor.label
    return actor.get_username()


def actor_user(actor: Actor) -> AbstractBaseUser | None:
    return None if isinstance(actor, SystemActor) else actor
