from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "deployments.actions"
    label = "actions"
    verbose_name = "Actions"

    def ready(self) -> None:
        # The sweeper sends a lost queued run's task again and ends a run whose worker stopped.
        from deployments.actions import pending

        pending.register()
