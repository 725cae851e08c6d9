"""Redis restarted, keeping nothing, while people create, change, restart and delete deployments."""

import time

from deployments.models import Deployment
from tests.drills.convergence import wait_until_converged
from tests.drills.figures import record_figure
from tests.drills.people import LivePage
from tests.support import wait_for

OUTAGE_SECONDS = 10


def test_everything_converges_after_redis_restarts_with_nothing_saved(drill_stack, private_redis, person, make_project):
    project = make_project("django-postgres")
    for number in range(6):
        person.create(project, f"steady-{number}", stage="development" if number < 2 else "production")
    wait_until_converged(project, since=time.monotonic(), timeout=60, drill="setup", stack=drill_stack)
    steady = list(Deployment.objects.filter(project=project).order_by("pk"))
    watched = steady[-1]

    with LivePage(person, watched.pk) as page:
        wait_for(lambda: page.shows(health="green", operations=False), timeout=20, what="the live page")
        # A burst, so that tasks are running, retrying and queued when Redis goes.
        for number in range(4):
            person.create(project, f"burst-{number}")
        person.change_environment(steady[2], "1")
        person.restart(steady[3])
        person.delete(steady[0])

        private_redis.stop()
        down = time.monotonic()
        # People go on working meanwhile: what they ask is recorded, never refused with a 500.
        person.create(project, "during-outage")
        person.change_environment(steady[4], "2")
        person.restart(steady[2])
        person.delete(steady[1])
        record_figure(f"Redis down: 4 requests answered in {time.monotonic() - down:.1f} s")
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down)))
        private_redis.start()
        back = time.monotonic()

        person.restart(watched)  # asked once Redis is back: it must run, and the page must follow it
        # Everything asked before, during and after the outage is done: the lost tasks were sent again.
        wait_until_converged(
            project,
            since=back,
            timeout=60,
            drill=f"Redis restarted ({OUTAGE_SECONDS} s down, nothing kept), from its return",
            stack=drill_stack,
        )
        wait_for(
            lambda: page.showed_operations_after(back) and page.shows(health="green", operations=False),
            timeout=15,
            what=f"the live page to follow the restart (saw {page.headers_seen[-5:]})",
        )
    for name, process in drill_stack.processes.items():
        assert process.poll() is None, f"{name} exited with {process.returncode}: {drill_stack.log(name)[-3000:]}"
