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
