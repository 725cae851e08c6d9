"""Everything that knows Kubernetes: manifests (pure), the client, operations, status (pure), the emulator."""
