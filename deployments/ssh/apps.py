from django.apps import AppConfig


class SSHConfig(AppConfig):
    name = "deployments.ssh"
    label = "ssh"
    verbose_name = "SSH keys and sessions"

    def ready(self):
        from deployments import sweeper
        from deployments.ssh.sessions import lost_sessions, session_end_lost

        # Sessions whose gateway died: the watcher's sweeper ends them (one watcher at a time).
        sweeper.register(
            sweeper.PendingWork("lost SSH session", find_lost=lost_sessions, send_again=session_end_lost, every=10)
        )
