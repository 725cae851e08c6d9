"""Project short names become unique across the installation (they are part of every public host).

Projects of different teams that share a short name keep the oldest one's;
the others get `<slug>-<id>`, printed here and recorded in their activity log
(their deployments keep their hosts until renamed: the host claims of the
`hosts` app are taken from what each deployment has now).
"""

from django.db import migrations


def separate_duplicate_slugs(apps, schema_editor):
    Project = apps.get_model("deployments", "Project")
    ActivityEntry = apps.get_model("deployments", "ActivityEntry")
    seen = set()
    for project in Project.objects.order_by("created_at", "pk"):
        if project.slug not in seen:
            seen.add(project.slug)
            continue
        old = project.slug
        suffix = f"-{project.pk}"
        project.slug = old[: 30 - len(suffix)].rstrip("-") + suffix
        project.save(update_fields=["slug"])
        seen.add(project.slug)
        message = (
            f"Short name “{old}” is used by another team's project: this project's is now “{project.slug}” "
            "(short names are unique across the installation)"
        )
        ActivityEntry.objects.create(
            action="project.slug_changed", message=message, project=project, team_id=project.team_id, data={}
        )
        print(f"\n  project {project.pk}: {message}")


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0003_operation_due_at'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='project',
            name='unique_project_slug_per_team',
        ),
        migrations.RunPython(separate_duplicate_slugs, migrations.RunPython.noop),
    ]
