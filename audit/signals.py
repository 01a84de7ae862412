from django.dispatch import Signal

# Sent by audit.transitions.apply_transition after its guarded UPDATE won, inside the same
# transaction. Arguments: instance, field, transition, source, target, actor, reason, at.
# django-fsm's own pre/post_transition fire before anything is written and .update() sends no
# model signals, so this is the one signal that means "this change happened".
transition_committed = Signal()
