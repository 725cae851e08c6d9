"""SSH into deployments: users' keys, who may open which SSH user name, and the sessions (issue 11).

The gateway (`deployments.ssh.gateway`) asks `access.authorize` and records
sessions through `sessions`; it knows nothing of teams or templates.
"""
