"""What the admin screens of the domain apps borrow from audit: the state diagram on a change page."""

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils.safestring import SafeString

from audit.state_diagram import state_diagram_figure

DIAGRAM_FIELD = "state_diagram"


class StateDiagramAdminMixin(admin.ModelAdmin):
    """Adds, under the change page's own fields, a section with the diagram of the model's
    django-fsm state field: where the object is and where it can go from there.

    Put it first among the bases (`class PayoutAdmin(StateDiagramAdminMixin, admin.ModelAdmin)`);
    it works with `fields`, `fieldsets` or neither, and on view-only (ReadOnlyAdmin) pages.
    """

    state_diagram_title = "Status: where it is and where it can go"

    # `obj: Any`, as ModelAdmin has it: a subclass may narrow it to its own model (SyncJob | None).
    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # Without declared `fields` Django lists the readonly fields too; the diagram has its own section.
        return [name for name in super().get_fields(request, obj) if name != DIAGRAM_FIELD]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly if obj is None or DIAGRAM_FIELD in readonly else [*readonly, DIAGRAM_FIELD]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            return fieldsets
        return [*fieldsets, (self.state_diagram_title, {"fields": [DIAGRAM_FIELD], "classes": ["state-diagram"]})]

    @admin.display(description="Diagram")
    def state_diagram(self, obj: Model) -> SafeString:
        return state_diagram_figure(obj)
