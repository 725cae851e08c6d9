"""Deployment sizes: the resources each container gets."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DeploymentSize:
    key: str
    label: str
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str

    @property
    def name(self) -> str:
        """ "Small": the label without what it gives."""
        return self.label.split(" (")[0]

    @property
    def cpu_words(self) -> str:
        """The CPU request as people say it: "0.25 CPU"."""
        value = self.cpu_request
        cores = int(value[:-1]) / 1000 if value.endswith("m") else float(value)
        return f"{cores:g} CPU"

    @staticmethod
    def memory_words(value: str) -> str:
        """ "512Mi" as "512 MiB", "2Gi" as "2 GiB"."""
        return value[:-2] + " " + value[-2:] + "B" if value.endswith(("Mi", "Gi")) else value

    def resources(self) -> dict:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


SIZES = {
    size.key: size
    for size in (
        DeploymentSize("small", "Small (0.25 CPU, 512 MiB)", "250m", "1", "512Mi", "512Mi"),
        DeploymentSize("medium", "Medium (1 CPU, 2 GiB)", "1", "2", "2Gi", "2Gi"),
        DeploymentSize("large", "Large (2 CPU, 4 GiB)", "2", "4", "4Gi", "4Gi"),
    )
}
