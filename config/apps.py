from django.contrib.admin.apps import AdminConfig


class BackOfficeAdminConfig(AdminConfig):
    """django.contrib.admin with config.admin_site.BackOfficeAdminSite as `admin.site`: every app's
    @admin.register lands on the site that asks for the second factor."""

    default_site = "config.admin_site.BackOfficeAdminSite"
