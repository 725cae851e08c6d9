"""The SSH gateway: an asyncssh server that authenticates keys with `deployments.ssh.access`,
and bridges each session to a container through the Kubernetes exec and port-forward APIs."""
