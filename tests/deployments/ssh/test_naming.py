"""SSH user names: unambiguous by construction, and parsing gives back what made them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployments.ssh.naming import SSHName, parse_ssh_user, ssh_user_for

labels = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z")


def test_it_names_component_deployment_project():
    assert ssh_user_for(component="app", deployment="dev", project="shop") == "app.dev.shop"
    assert ssh_user_for(component="app", deployment="dev", project="shop", replica="1") == "1.app.dev.shop"


@given(component=labels, deployment=labels, project=labels, replica=st.none() | labels)
def test_parsing_round_trips(component, deployment, project, replica):
    name = ssh_user_for(component=component, deployment=deployment, project=project, replica=replica)
    assert parse_ssh_user(name) == SSHName(component, deployment, project, replica)


@given(a=st.tuples(labels, labels, labels), b=st.tuples(labels, labels, labels))
def test_different_parts_give_different_names(a, b):
    if a != b:
        assert ssh_user_for(component=a[0], deployment=a[1], project=a[2]) != ssh_user_for(
            component=b[0], deployment=b[1], project=b[2]
        )


@pytest.mark.parametrize(
    "text",
    ["", "app", "app.dev", "a.b.c.d.e", "App.dev.shop", "app..shop", "-app.dev.shop", "app.dev.shop.", "x" * 300],
)
def test_it_parses_nothing_else(text):
    assert parse_ssh_user(text) is None


def test_it_refuses_to_make_a_name_it_could_not_parse():
    with pytest.raises(ValueError, match="DNS label"):
        ssh_user_for(component="app", deployment="dev.x", project="shop")
